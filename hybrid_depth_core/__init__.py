"""hybrid-depth core: models, geometry, losses, data and bag I/O. Never imports ROS (rclpy)."""

__version__ = '0.1.0'
