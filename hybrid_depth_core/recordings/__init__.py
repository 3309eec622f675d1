"""Recorded rosbag2 bags: reading them whatever happened to them (sqlite3 and MCAP, damaged ones
recovered), writing them, their time spans, and the camera's motion they hold (TF tree,
odometry, poses)."""
