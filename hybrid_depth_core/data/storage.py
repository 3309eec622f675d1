"""The rosbag2 storage formats this project writes, by the names ROS 2 uses for them (the
command line offers these without importing `rosbags`)."""
from __future__ import annotations

STORAGES = ('mcap', 'sqlite3')


def storage_plugin(name: str):
    """rosbags' StoragePlugin for `name` (one of STORAGES)."""
    from rosbags.rosbag2 import StoragePlugin

    if name not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {name!r}')
    return {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[name]
