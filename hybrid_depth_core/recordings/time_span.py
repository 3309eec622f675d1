"""A part of a recording in time, so that one bag gives a training part and a held-out part.

Written START:END. Each side is a fraction of the recording (0.67) or seconds from its first
image with an `s` suffix (12.5s); an empty side is the recording's start or end. The recording
runs from its first to its last image stamp, and a part holds the images with START <= t < END,
and the last image too when END is the recording's end (1, or left empty): so `:0.67` and
`0.67:` (or `:10s` and `10s:`) split a bag into two parts that share no image and miss none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeSpan:
    text: str = ''  # '' : the whole recording

    def __post_init__(self):
        self.bounds  # parse now, so that a bad span is refused before any work

    @property
    def whole(self) -> bool:
        return self.bounds == ((0.0, False), (1.0, False))

    @property
    def bounds(self) -> tuple[tuple[float, bool], tuple[float, bool]]:
        """((start, in seconds?), (end, in seconds?))."""
        if not self.text:
            return (0.0, False), (1.0, False)
        start, colon, end = self.text.partition(':')
        if not colon:
            raise ValueError(f'span {self.text!r} must be START:END, e.g. 0:0.67 (fractions of '
                             f'the recording) or 10s:25s (seconds from its start)')
        parsed = (_bound(start, 0.0, self.text), _bound(end, 1.0, self.text))
        (a, a_seconds), (b, b_seconds) = parsed
        if a_seconds == b_seconds and a >= b:
            raise ValueError(f'span {self.text!r} ends before it starts')
        return parsed

    def mask(self, stamps_ns) -> np.ndarray:
        """Which of the recording's image stamps (all of them, any order) the span holds."""
        stamps = np.asarray(stamps_ns, np.int64)
        if not len(stamps) or self.whole:
            return np.ones(len(stamps), bool)
        first, last = int(stamps.min()), int(stamps.max())
        seconds = (stamps - first) / 1e9
        duration = (last - first) / 1e9
        (start, start_s), (end, end_s) = self.bounds
        to_the_end = not end_s and end == 1.0  # END is the recording's end: its last image too
        start = start if start_s else start * duration
        end = end if end_s else end * duration
        return (seconds >= start) & ((seconds < end) | (to_the_end & (seconds <= end)))

    def describe(self, stamps_ns) -> str:
        """'span A:B: N of M images, x-y s of the recording's z s'."""
        stamps = np.asarray(stamps_ns, np.int64)
        chosen = self.mask(stamps)
        if not chosen.any():
            return f'span {self.text}: no image of the recording\'s {len(stamps)}'
        seconds = (stamps - stamps.min()) / 1e9
        return (f'span {self.text}: {int(chosen.sum())} of {len(stamps)} images, '
                f'{seconds[chosen].min():.1f}-{seconds[chosen].max():.1f} s of the '
                f'recording\'s {seconds.max():.1f} s')


def _bound(text: str, default: float, span: str) -> tuple[float, bool]:
    text = text.strip()
    if not text:
        return default, False
    seconds = text.endswith('s')
    try:
        value = float(text[:-1] if seconds else text)
    except ValueError:
        value = float('nan')
    if not np.isfinite(value) or value < 0 or (not seconds and value > 1):
        raise ValueError(f'span {span!r}: {text!r} is neither a fraction of the recording '
                         f'(0 to 1) nor seconds from its start (e.g. 12.5s)')
    return value, seconds
