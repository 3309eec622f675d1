"""hybrid-depth ROS 2 layer: the node, message conversions and bag replay. Thin: math lives in
hybrid_depth_core."""
