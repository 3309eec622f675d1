"""Did the camera move between two frames? Multi-frame depth needs a baseline."""
from __future__ import annotations

import cv2
import numpy as np

# Mean |difference| in grey levels, at 1/4 size, below which a camera counts as static:
# above sensor and compression noise, below what any real motion in a textured scene gives.
STATIC_DIFFERENCE = 1.0


def is_static(previous: np.ndarray, current: np.ndarray,
              threshold: float = STATIC_DIFFERENCE) -> bool:
    """True when two RGB frames differ by less than `threshold` grey levels on average: the
    camera stood still, and a cost volume over a zero baseline says nothing about depth.
    Compared at 1/4 size, where area averaging cuts per-pixel noise by 4."""
    size = (max(1, current.shape[1] // 4), max(1, current.shape[0] // 4))
    small = [cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), size,
                        interpolation=cv2.INTER_AREA).astype(np.float32)
             for image in (previous, current)]
    return float(np.abs(small[0] - small[1]).mean()) < threshold
