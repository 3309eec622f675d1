"""std_msgs/Header: the one place a stamp becomes nanoseconds, and the one lookup of the
stamp nearest to another."""
from __future__ import annotations

import bisect


def stamp_ns(message, fallback_ns: int | None = None) -> int:
    """`message.header.stamp` in nanoseconds. A driver that leaves the stamp 0 gets
    `fallback_ns` instead where one is known (a bag's receive time)."""
    stamp = message.header.stamp
    value = int(stamp.sec) * 10**9 + int(stamp.nanosec)
    return value if value > 0 or fallback_ns is None else int(fallback_ns)


def nearest_index(stamps, stamp: int) -> int | None:
    """The index of the stamp nearest to `stamp` in sorted `stamps` (a list or array of ns);
    None if there are none."""
    if not len(stamps):
        return None
    index = bisect.bisect(stamps, stamp)
    candidates = [i for i in (index - 1, index) if 0 <= i < len(stamps)]
    return min(candidates, key=lambda i: abs(int(stamps[i]) - int(stamp)))
