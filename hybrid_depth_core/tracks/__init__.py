"""Image geometry over time: features tracked through a recording, and what their tracks say
about depth with the camera's motion (hints.py)."""
