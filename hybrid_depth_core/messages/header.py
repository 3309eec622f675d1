"""std_msgs/Header: the one place a stamp becomes nanoseconds."""
from __future__ import annotations


def stamp_ns(message, fallback_ns: int | None = None) -> int:
    """`message.header.stamp` in nanoseconds. A driver that leaves the stamp 0 gets
    `fallback_ns` instead where one is known (a bag's receive time)."""
    stamp = message.header.stamp
    value = int(stamp.sec) * 10**9 + int(stamp.nanosec)
    return value if value > 0 or fallback_ns is None else int(fallback_ns)
