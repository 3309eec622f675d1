"""Files the package ships (the model, parameter files, the middleware profile), found from
wherever it is installed, and the middleware profile for camera-sized messages."""
from __future__ import annotations

import os
from pathlib import Path

# Fast DDS (ROS 2's default middleware) reads its XML profile from this variable when a process
# creates its first participant; other middlewares ignore it.
PROFILE_VARIABLE = 'FASTRTPS_DEFAULT_PROFILES_FILE'
LARGE_IMAGES_PROFILE = 'config/fastdds_large_images.xml'


def shipped(relative: str) -> Path:
    """A file the package ships, found from wherever it is installed: the source tree (or an
    editable install), or the `share/hybrid_depth_ros/` of a pip or colcon install prefix.
    Unfound: `relative` itself, so that the error names it."""
    for directory in Path(__file__).resolve().parents:
        for candidate in (directory / relative,
                          directory / 'share' / 'hybrid_depth_ros' / relative):
            if candidate.is_file():
                return candidate
    return Path(relative)


def with_large_images_profile(env) -> dict:
    """`env` (a mapping of environment variables) with Fast DDS's profile for camera-sized
    messages (config/fastdds_large_images.xml: a shared-memory segment large enough for a
    whole image, so that best-effort subscribers get them), unless a profile is set already:
    the user's own wins."""
    env = dict(env)
    if not (env.get(PROFILE_VARIABLE) or env.get('FASTDDS_DEFAULT_PROFILES_FILE')):
        profile = shipped(LARGE_IMAGES_PROFILE)
        if profile.is_file():
            env[PROFILE_VARIABLE] = str(profile)
    return env


def use_large_images_profile() -> None:
    """This process's environment with_large_images_profile: before its first participant
    (rclpy.init and the first node), when Fast DDS reads it."""
    os.environ.update(with_large_images_profile(os.environ))
