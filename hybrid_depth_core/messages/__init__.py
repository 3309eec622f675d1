"""ROS 2 messages without ROS: decoding camera images and camera_info, building the depth,
camera_info and point-cloud messages, and rosbags message objects for writing bags. Everything
works on message-like objects (rclpy messages, rosbags messages), so the node, bag inference
and training from bags share one implementation."""
