"""Plumbing between the subscription callbacks and the inference thread, without ROS: a slot
that keeps only the newest frame, the recent calibrations by stamp, counters for the
once-a-second log line, a throttle so that one bad input stream cannot flood the log, and the
rule for when failing frames mean the node must end."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch


class LatestSlot:
    """Holds only the newest item. A producer that outruns the consumer replaces the waiting
    item (a drop) instead of queuing it, so latency never builds up behind a slow model."""

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item) -> bool:
        """Store `item`; True if it replaced one that was never taken (a dropped frame)."""
        with self._condition:
            dropped = self._item is not None
            self._item = item
            self._condition.notify()
            return dropped

    def take(self, timeout: float | None = None):
        """The newest item (removing it), or None after `timeout` seconds or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()


class CalibrationStore:
    """The last `size` camera_info messages, by header stamp (ns). get(stamp) pairs an image
    with the calibration of its own stamp when that has arrived (cameras that change ROI or
    zoom per frame), else with the newest one (a camera that publishes it once, latched, or
    slower than its images, or with other stamps). A camera that stamps its calibration like
    its images may send the image first (image_transport's CameraPublisher does): get() waits
    up to `wait_s` for the image's own calibration only while the calibration is arriving
    with the images, that is when each of the last FOLLOWING images got its own in time
    (before its get(), or at most `wait_s` after it). A latched calibration, or one at 1 Hz,
    never does that for two images in a row, so it never costs a wait, and neither does one
    that arrives later than `wait_s`. Thread-safe: subscription callbacks put, the inference
    thread gets."""

    FOLLOWING = 2

    def __init__(self, size: int = 30, wait_s: float = 0.05):
        self._condition = threading.Condition()
        self._size, self._wait_s = size, wait_s
        self._by_stamp: dict[int, object] = {}  # in arrival order: the last is the newest
        self._streak = 0  # consecutive images whose own calibration came in time
        # The last image asked for: its stamp, whether its calibration was there, when asked,
        # and how long after that its calibration arrived (None: not yet).
        self._last: tuple[int, bool, float] | None = None
        self._late_by: float | None = None

    def put(self, stamp_ns: int, info) -> None:
        with self._condition:
            self._by_stamp.pop(stamp_ns, None)  # a repeat counts as the newest again
            self._by_stamp[stamp_ns] = info
            if len(self._by_stamp) > self._size:
                del self._by_stamp[next(iter(self._by_stamp))]
            if self._last is not None and self._last[:2] == (stamp_ns, False) \
                    and self._late_by is None:
                self._late_by = time.monotonic() - self._last[2]
            self._condition.notify_all()

    def get(self, stamp_ns: int):
        """The calibration stamped `stamp_ns`, else the newest; None before any arrived."""
        with self._condition:
            if self._last is not None:
                in_time = self._last[1] or (self._late_by is not None
                                            and self._late_by <= self._wait_s)
                self._streak = self._streak + 1 if in_time else 0
            asked = time.monotonic()
            if self._streak >= self.FOLLOWING and stamp_ns not in self._by_stamp \
                    and self._by_stamp and max(self._by_stamp) < stamp_ns:
                self._condition.wait_for(lambda: stamp_ns in self._by_stamp, self._wait_s)
            info = self._by_stamp.get(stamp_ns)
            self._last, self._late_by = (stamp_ns, info is not None, asked), None
            if info is None and self._by_stamp:
                info = next(reversed(self._by_stamp.values()))
            return info


class Stats:
    """What happened to the images since the last report, and in all; thread-safe. Images
    that reached the subscription callback (`received`), those left because a newer one arrived
    before the inference thread was free (`skipped`), frames served with their latency
    (received -> published), bad input and failed frames. With `multi_frame`, also how many
    frames were matched against an earlier one: a sequence that never continues (stamps that
    do not advance) shows as 0."""

    COUNTS = ('received', 'skipped', 'bad', 'failed')

    def __init__(self, multi_frame: bool = False):
        self._lock = threading.Lock()
        self.multi_frame = multi_frame
        self._since = time.monotonic()
        self._latencies: list[float] = []
        self._matched = 0
        self._interval = dict.fromkeys(self.COUNTS, 0)
        self.totals = dict.fromkeys(self.COUNTS + ('served',), 0)
        self.last_received: float | None = None  # monotonic time of the newest image

    def received(self) -> None:
        with self._lock:
            self._count('received')
            self.last_received = time.monotonic()

    def skipped(self) -> None:
        with self._lock:
            self._count('skipped')

    def bad(self) -> None:
        with self._lock:
            self._count('bad')

    def failed(self) -> None:
        with self._lock:
            self._count('failed')

    def served(self, latency_s: float, used_previous: bool = False) -> None:
        with self._lock:
            self._latencies.append(latency_s)
            self._matched += used_previous
            self.totals['served'] += 1

    def _count(self, name: str) -> None:
        self._interval[name] += 1
        self.totals[name] += 1

    def take_interval(self, now: float | None = None) -> Interval:
        """What happened since the last call (then reset)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            interval = Interval(max(now - self._since, 1e-9), self._latencies, self._matched,
                                self._interval, self.totals['skipped'])
            self._latencies, self._matched, self._since = [], 0, now
            self._interval = dict.fromkeys(self.COUNTS, 0)
        return interval

    def report(self, now: float | None = None) -> str | None:
        """One line about the interval since the last report (then reset), None if idle."""
        return self.take_interval(now).line(self.multi_frame)


@dataclass(frozen=True)
class Interval:
    """Stats over one reporting interval."""

    seconds: float
    latencies: list[float]  # received -> published, of the frames served
    matched: int            # frames served matched against an earlier one
    counts: dict[str, int]  # Stats.COUNTS
    skipped_total: int

    @property
    def served_hz(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def received_hz(self) -> float:
        return self.counts['received'] / self.seconds

    def line(self, multi_frame: bool = False) -> str | None:
        """The node's once-a-second log line; None if nothing happened."""
        latencies, counts = self.latencies, self.counts
        if not (latencies or any(counts.values())):
            return None
        line = f'{self.served_hz:.1f} Hz'
        if latencies:
            line += (f', latency {1000 * sum(latencies) / len(latencies):.0f} ms '
                     f'(max {1000 * max(latencies):.0f})')
            if multi_frame:
                line += f', multi-frame {self.matched} of {len(latencies)}'
        return (line + f'; received {counts["received"]}, skipped {counts["skipped"]} (a '
                f'newer image came first; total {self.skipped_total}), bad input '
                f'{counts["bad"]}, failed {counts["failed"]}')


class Throttle:
    """ready(key) is True at most once per `period_s` for each key (e.g. an error message), so
    a recurring problem is reported periodically and a new problem at once."""

    def __init__(self, period_s: float):
        self.period_s = period_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def ready(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                return False
            if len(self._last) >= 256:  # forget expired keys: messages may carry changing numbers
                self._last = {k: t for k, t in self._last.items() if now - t < self.period_s}
            self._last[key] = now
            return True


class FailureLimit:
    """When inference failures stop the node, so that `respawn` or a supervisor acts instead of
    a node that stays up publishing nothing: after `limit` consecutive frames failed, or at once
    on a device error (torch.AcceleratorError: a CUDA context after an illegal access or a
    device-side assert stays broken for the life of the process). A frame served resets the
    count; bad input is not an inference failure and is not counted here."""

    def __init__(self, limit: int):
        self.limit = limit
        self.consecutive = 0
        self.last_cause: str | None = None  # while frames fail: the last one's error

    def succeeded(self) -> None:
        self.consecutive, self.last_cause = 0, None

    def failed(self, error: BaseException) -> str | None:
        """Count one failed frame; the line to exit with when the node must end, else None."""
        self.consecutive += 1
        cause = self.last_cause = f'{type(error).__name__}: {error}'.splitlines()[0]
        if _is_device_error(error):
            return f'inference failed with a device error, which does not recover: {cause}'
        if self.consecutive >= self.limit:
            return (f'inference failed on {self.consecutive} frames in a row (max_failures), '
                    f'the last with {cause}')
        return None


def _is_device_error(error: BaseException) -> bool:
    """torch.AcceleratorError (torch 2.8 on), or before it the RuntimeError CUDA raised."""
    accelerator = getattr(torch, 'AcceleratorError', None)
    if accelerator is not None:
        return isinstance(error, accelerator)
    return isinstance(error, RuntimeError) and 'CUDA error' in str(error)
