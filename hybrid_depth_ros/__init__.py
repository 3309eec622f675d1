"""hybrid-depth ROS 2 layer: what needs rclpy (the node, bag replay, the demo's ROS side) and the
`hybrid-depth` command line, which drives both layers. Thin: everything ROS-free, including the
frame -> messages runtime, lives in hybrid_depth_core. Importing this package imports no ROS."""
