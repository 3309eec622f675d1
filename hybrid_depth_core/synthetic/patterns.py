"""Band-limited procedural patterns: the building blocks of the textures.

Every function takes the pixel's footprint on the surface (metres) and fades detail finer than
it to its mean, or box-filters edges over it, so that textures built from them do not alias
(see textures.py for why that matters).
"""
from __future__ import annotations

import numpy as np

_TABLE_BITS = 8
_TABLE_MASK = (1 << _TABLE_BITS) - 1
# Lattice values of the value noise; fixed so that textures do not depend on the scene seed
# (scenes differ through per-object texture offsets instead).
_LATTICE = np.random.default_rng(0x5EED).random(1 << (2 * _TABLE_BITS)).astype(np.float32)


def value_noise(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smooth noise in [0, 1] with unit lattice spacing (period 256 lattice cells)."""
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    iu = iu.astype(np.int32) & _TABLE_MASK
    iv = iv.astype(np.int32) & _TABLE_MASK
    iu1, iv1 = (iu + 1) & _TABLE_MASK, (iv + 1) & _TABLE_MASK
    row0, row1 = iv << _TABLE_BITS, iv1 << _TABLE_BITS
    su, sv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    top = _LATTICE[row0 | iu] * (1 - su) + _LATTICE[row0 | iu1] * su
    bottom = _LATTICE[row1 | iu] * (1 - su) + _LATTICE[row1 | iu1] * su
    return top * (1 - sv) + bottom * sv


def detail_weight(size: float | np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """1 for details of `size` metres covering >= 2 footprints, fading to 0 at 1 footprint."""
    return np.clip(size / footprint - 1.0, 0.0, 1.0)


def cell_value(i: np.ndarray, j: np.ndarray, size: float | np.ndarray,
               footprint: np.ndarray) -> np.ndarray:
    """A random value in about [-0.5, 0.5] per integer cell (i, j) of `size` metres (per-window or
    per-tile variation), fading to 0 where cells get too small to show without aliasing."""
    return (cell_random(i, j) - 0.5) * detail_weight(size, footprint)


def cell_random(i: np.ndarray, j: np.ndarray | int) -> np.ndarray:
    """A fixed random value in [0, 1) per integer cell (i, j) (period 256 in each), for placing
    details; unlike `cell_value` it does not fade, so only use it to choose what to draw."""
    j = np.asarray(j)
    return _LATTICE[((j.astype(np.int32) & _TABLE_MASK) << _TABLE_BITS)
                    | (i.astype(np.int32) & _TABLE_MASK)]


def fbm(u: np.ndarray, v: np.ndarray, footprint: np.ndarray, scale: float,
        octaves: int, gain: float = 0.55) -> np.ndarray:
    """Fractal noise in about [-0.5, 0.5]: octaves of value noise from `scale` metres down, each
    `gain` times weaker than the last (higher = rougher), fading out where the pixel footprint
    exceeds 1/2 of its lattice spacing."""
    total = np.zeros_like(u)
    amplitude = 1.0
    # Normalised by all octaves' amplitudes: a point's colour must not depend on which other
    # pixels are rendered with it.
    norm = sum(gain ** octave for octave in range(octaves))
    for octave in range(octaves):
        spacing = scale / 2 ** octave
        weight = detail_weight(spacing, footprint)
        if not weight.any():
            break  # finer octaves are smaller still
        shift = 17.31 * octave  # decorrelates octaves that share the lattice table
        total += amplitude * weight * (value_noise(u / spacing + shift, v / spacing - shift) - 0.5)
        amplitude *= gain
    return total / norm


def stripes(x: np.ndarray, period: float, duty: float, footprint: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a pixel of width `footprint` at x by the periodic pattern that is
    'on' on [k*period, (k + duty)*period). Exact box filtering, so edges never alias."""
    on = duty * period

    def integral(s):
        return np.floor(s / period) * on + np.minimum(np.mod(s, period), on)

    half = np.maximum(footprint, 1e-4) / 2
    return (integral(x + half) - integral(x - half)) / (2 * half)


def band(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray,
         footprint: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a pixel of width `footprint` at x by the interval [lo, hi]."""
    half = np.maximum(footprint, 1e-4) / 2
    return (np.clip(x + half, lo, hi) - np.clip(x - half, lo, hi)) / (2 * half)


def mix(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return a + (b - a) * weight[:, None]


def face_coordinates(points: np.ndarray, face_axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) on a box face: u horizontal along the face, v = height (x, y on horizontal faces)."""
    u = np.where(face_axis == 0, points[:, 1], points[:, 0])
    v = np.where(face_axis == 2, points[:, 1], points[:, 2])
    return u, v
