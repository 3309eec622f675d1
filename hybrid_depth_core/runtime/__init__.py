"""The ROS-free runtime: the predictor, its loader, the frame -> messages pipeline the node and
`infer` share, and bag inference. Never imports `training`."""
