"""Data sources: the synthetic drive, rosbag2 reading and writing."""
