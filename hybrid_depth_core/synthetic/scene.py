"""A procedural street: the static world the synthetic drive is rendered from.

World frame (REP 103): x along the street (the direction of travel), y to the left, z up,
ground at z = 0. Everything above the ground is an axis-aligned box (buildings, parked cars,
crates) or a vertical cylinder (poles), which keeps ray casting exact and cheap.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Material(IntEnum):
    """What a pixel shows; selects the texture function. SKY is 'no surface hit'."""

    SKY = -1
    GROUND = 0
    FACADE = 1
    CAR_BODY = 2
    CAR_CABIN = 3
    CRATE = 4
    POLE = 5
    # Indoors (room_scene.py); textures in room_textures.py.
    WALL = 6
    FLOOR_WOOD = 7
    FLOOR_TILE = 8
    CEILING = 9
    LAMP = 10
    WOOD = 11
    CABINET = 12
    FABRIC = 13
    BOOKS = 14
    CARDBOARD = 15
    PICTURE = 16
    DOOR = 17
    TRIM = 18
    RUG = 19


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the street generator. Ranges are (low, high), sampled uniformly per object."""

    road_half_width: tuple[float, float] = (4.5, 7.0)   # kerb to street centre, metres
    sidewalk_width: tuple[float, float] = (2.0, 4.0)
    building_length: tuple[float, float] = (8.0, 30.0)
    building_height: tuple[float, float] = (6.0, 25.0)
    building_depth: tuple[float, float] = (8.0, 20.0)   # extent away from the street
    building_setback: tuple[float, float] = (0.0, 2.5)  # behind the sidewalk's outer edge
    building_gap_probability: float = 0.3               # side streets / gaps between houses
    car_probability: float = 0.55                       # per 6.5 m parking slot
    pole_spacing: tuple[float, float] = (12.0, 25.0)
    crate_probability: float = 0.25                     # per 10 m of sidewalk
    margin_behind: float = 40.0                         # scene starts this far behind the start
    margin_ahead: float = 160.0                         # and ends this far beyond the last pose

    def __post_init__(self):
        # Lengths and spacings must be positive, or the generator's loops never advance.
        for name in ('road_half_width', 'sidewalk_width', 'building_length', 'building_height',
                     'building_depth', 'pole_spacing'):
            low, high = getattr(self, name)
            if not 0.5 <= low <= high:
                raise ValueError(f'scene.{name} must satisfy 0.5 <= low <= high, '
                                 f'got {(low, high)}')
        low, high = self.building_setback
        if not 0 <= low <= high:
            raise ValueError(f'scene.building_setback must satisfy 0 <= low <= high, '
                             f'got {(low, high)}')
        for name in ('building_gap_probability', 'car_probability', 'crate_probability'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'scene.{name} must be a probability, got {getattr(self, name)}')


@dataclass(frozen=True)
class Boxes:
    """M axis-aligned boxes. `pattern` holds per-box texture parameters (see textures.py)."""

    lo: np.ndarray        # (M, 3) min corner, metres
    hi: np.ndarray        # (M, 3) max corner
    material: np.ndarray  # (M,) Material
    color: np.ndarray     # (M, 3) float32 base albedo in [0, 1]
    pattern: np.ndarray   # (M, 4) float32 texture offset (2), facade window spacing, floor height


@dataclass(frozen=True)
class Poles:
    """P vertical cylinders standing on the ground."""

    center: np.ndarray    # (P, 2) x, y
    radius: np.ndarray    # (P,)
    height: np.ndarray    # (P,)
    color: np.ndarray     # (P, 3) float32
    pattern: np.ndarray   # (P, 2) float32 texture offset


@dataclass(frozen=True)
class Scene:
    road_half_width: float
    sidewalk_width: float
    boxes: Boxes
    poles: Poles
    sun: np.ndarray       # (3,) unit vector towards the sun (indoors: the main light)
    ground_plane: bool = True  # the plane z = 0 is the ground; indoors the floor is a box


# Albedos of common facade finishes: brick, sandstone, render, concrete, painted plaster.
_FACADE_COLORS = np.array([[0.55, 0.27, 0.20], [0.76, 0.66, 0.50], [0.85, 0.82, 0.76],
                           [0.52, 0.52, 0.50], [0.62, 0.70, 0.74], [0.80, 0.62, 0.42],
                           [0.45, 0.38, 0.33]])
_CAR_COLORS = np.array([[0.75, 0.08, 0.08], [0.10, 0.20, 0.55], [0.85, 0.85, 0.85],
                        [0.12, 0.12, 0.13], [0.55, 0.57, 0.60], [0.15, 0.40, 0.20],
                        [0.85, 0.65, 0.10]])


def generate_scene(config: SceneConfig, x_start: float, x_end: float,
                   rng: np.random.Generator) -> Scene:
    """A street covering x in [x_start - margin_behind, x_end + margin_ahead]."""
    x0, x1 = x_start - config.margin_behind, x_end + config.margin_ahead
    road = rng.uniform(*config.road_half_width)
    sidewalk = rng.uniform(*config.sidewalk_width)
    builder = _BoxList(rng)
    for side in (1.0, -1.0):
        _add_buildings(builder, config, side, road + sidewalk, x0, x1, rng)
        _add_cars(builder, config, side, road, x0, x1, rng)
        _add_crates(builder, config, side, road, sidewalk, x0, x1, rng)
    poles = _make_poles(config, road, x0, x1, rng)
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.radians(rng.uniform(25, 65))
    sun = np.array([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation),
                    np.sin(elevation)])
    return Scene(road_half_width=road, sidewalk_width=sidewalk, boxes=builder.build(),
                 poles=poles, sun=sun)


class _BoxList:
    """Collects boxes one by one and stacks them into a Boxes."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._rows: list[tuple] = []

    def add(self, lo, hi, material: Material, color, window_spacing=0.0, floor_height=0.0):
        offset = self._rng.uniform(0, 1000, size=2)
        self._rows.append((lo, hi, int(material), color,
                           (offset[0], offset[1], window_spacing, floor_height)))

    def build(self) -> Boxes:
        lo, hi, material, color, pattern = zip(*self._rows)
        return Boxes(lo=np.array(lo, dtype=np.float64), hi=np.array(hi, dtype=np.float64),
                     material=np.array(material), color=np.array(color, dtype=np.float32),
                     pattern=np.array(pattern, dtype=np.float32))


def _jitter(rng: np.random.Generator, color: np.ndarray, amount: float = 0.06) -> np.ndarray:
    return np.clip(color + rng.uniform(-amount, amount, size=3), 0.02, 0.98)


def _add_buildings(boxes: _BoxList, config: SceneConfig, side: float, front: float,
                   x0: float, x1: float, rng: np.random.Generator):
    """A row of buildings whose street-facing facade is at |y| >= front, on one side."""
    x = x0
    while x < x1:
        length = rng.uniform(*config.building_length)
        if rng.random() < config.building_gap_probability:
            x += rng.uniform(3.0, 12.0)
        near = front + rng.uniform(*config.building_setback)
        far = near + rng.uniform(*config.building_depth)
        y_lo, y_hi = (near, far) if side > 0 else (-far, -near)
        color = _jitter(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))])
        boxes.add((x, y_lo, 0.0), (x + length, y_hi, rng.uniform(*config.building_height)),
                  Material.FACADE, color, window_spacing=rng.uniform(2.0, 3.5),
                  floor_height=rng.uniform(2.9, 3.6))
        x += length


def _add_cars(boxes: _BoxList, config: SceneConfig, side: float, road: float,
              x0: float, x1: float, rng: np.random.Generator):
    """Cars parked along the kerb: a body box with a narrower cabin box on top."""
    slot = 6.5
    for x in np.arange(x0, x1, slot):
        if rng.random() >= config.car_probability:
            continue
        length, width = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9)
        start = x + rng.uniform(0.2, slot - length - 0.2)
        y_center = side * (road - 0.3 - width / 2)
        color = _jitter(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))], 0.04)
        body_top = rng.uniform(0.85, 1.0)
        boxes.add((start, y_center - width / 2, 0.25),
                  (start + length, y_center + width / 2, body_top), Material.CAR_BODY, color)
        cabin_start = start + length * rng.uniform(0.2, 0.3)
        boxes.add((cabin_start, y_center - width / 2 + 0.1, body_top),
                  (cabin_start + length * 0.5, y_center + width / 2 - 0.1,
                   body_top + rng.uniform(0.45, 0.6)), Material.CAR_CABIN, color)


def _add_crates(boxes: _BoxList, config: SceneConfig, side: float, road: float,
                sidewalk: float, x0: float, x1: float, rng: np.random.Generator):
    """Bins, crates and planters on the outer half of the sidewalk."""
    for x in np.arange(x0, x1, 10.0):
        if rng.random() >= config.crate_probability:
            continue
        size = rng.uniform(0.5, 1.2, size=3)
        start = x + rng.uniform(0, 10.0 - size[0])
        y_center = side * (road + sidewalk - size[1] / 2 - rng.uniform(0.1, 0.5))
        color = _jitter(rng, np.array([0.45, 0.33, 0.20]), 0.12)
        boxes.add((start, y_center - size[1] / 2, 0.0), (start + size[0], y_center + size[1] / 2,
                                                         size[2]), Material.CRATE, color)


def _make_poles(config: SceneConfig, road: float, x0: float, x1: float,
                rng: np.random.Generator) -> Poles:
    """Street lights and sign posts at the kerb; taller than any camera, so no top is seen."""
    rows = []
    for side in (1.0, -1.0):
        x = x0 + rng.uniform(0, config.pole_spacing[1])
        while x < x1:
            radius = rng.uniform(0.07, 0.15)
            color = _jitter(rng, np.array([0.35, 0.37, 0.38]), 0.1)
            rows.append(((x, side * (road + 0.4)), radius, rng.uniform(3.5, 7.0), color,
                         rng.uniform(0, 1000, size=2)))
            x += rng.uniform(*config.pole_spacing)
    center, radius, height, color, pattern = zip(*rows)
    return Poles(center=np.array(center), radius=np.array(radius), height=np.array(height),
                 color=np.array(color, dtype=np.float32),
                 pattern=np.array(pattern, dtype=np.float32))
