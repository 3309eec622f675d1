"""Image geometry over time: features followed from frame to frame (hints.follow, also the
keyframe tracking's step), and what their tracks say about depth with the camera's motion
(hints.py)."""
