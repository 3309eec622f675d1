"""Furniture for the procedural room: each piece a handful of axis-aligned boxes.

A piece is laid out in its own frame (s along its back, d out from its back, z up), which a
`Placement` maps into the world, so one description serves every wall and every orientation of
a free-standing piece. Sizes are those of real furniture (seat 0.45 m, table 0.75 m).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_depth_core.synthetic.scene import Boxes, Material

# Oak, walnut, pale birch, grey-washed pine.
WOOD_COLORS = np.array([[0.62, 0.45, 0.28], [0.38, 0.25, 0.16], [0.75, 0.62, 0.45],
                        [0.55, 0.52, 0.48]])
# White, light grey, navy, sage, anthracite.
PAINT_COLORS = np.array([[0.88, 0.88, 0.86], [0.70, 0.71, 0.72], [0.18, 0.23, 0.36],
                         [0.55, 0.62, 0.52], [0.22, 0.22, 0.23]])
# Grey, denim, mustard, bottle green, tan leather, burgundy.
FABRIC_COLORS = np.array([[0.50, 0.50, 0.52], [0.25, 0.35, 0.52], [0.78, 0.60, 0.20],
                          [0.20, 0.38, 0.28], [0.60, 0.42, 0.28], [0.48, 0.14, 0.18]])
CARDBOARD_COLOR = np.array([0.62, 0.47, 0.30])


def jitter(rng: np.random.Generator, color: np.ndarray, amount: float = 0.05) -> np.ndarray:
    return np.clip(color + rng.uniform(-amount, amount, size=3), 0.02, 0.98)


def pick(rng: np.random.Generator, palette: np.ndarray, amount: float = 0.05) -> np.ndarray:
    return jitter(rng, palette[rng.integers(len(palette))], amount)


class BoxBuilder:
    """Collects boxes one by one (each with a random texture offset) and stacks them into a
    Boxes; a piece that does not fit is taken back with `truncate`."""

    def __init__(self, rng: np.random.Generator):
        self._rng = rng
        self._rows: list[tuple] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, lo, hi, material: Material, color, a: float = 0.0, b: float = 0.0):
        """A box from corner `lo` to `hi`; `a` and `b` are the material's texture parameters."""
        offset = self._rng.uniform(0, 1000, size=2)
        self._rows.append((lo, hi, int(material), color, (offset[0], offset[1], a, b)))

    def truncate(self, count: int):
        del self._rows[count:]

    def extent(self, since: int) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) corners of the bounding box of the boxes added since there were `since`."""
        lo = np.array([row[0] for row in self._rows[since:]]).min(axis=0)
        hi = np.array([row[1] for row in self._rows[since:]]).max(axis=0)
        return lo, hi

    def build(self) -> Boxes:
        lo, hi, material, color, pattern = zip(*self._rows)
        return Boxes(lo=np.array(lo, dtype=np.float64), hi=np.array(hi, dtype=np.float64),
                     material=np.array(material), color=np.array(color, dtype=np.float32),
                     pattern=np.array(pattern, dtype=np.float32))


@dataclass(frozen=True)
class Placement:
    """A piece's frame in the world: s = d = 0 at `origin` (x, y), s along world axis `along`
    (0: x, 1: y) in direction `s_sign`, d along the other axis in direction `d_sign`."""

    origin: tuple[float, float]
    along: int
    s_sign: float = 1.0
    d_sign: float = 1.0

    def box(self, s0, s1, d0, d1, z0, z1) -> tuple[tuple, tuple]:
        """World corners (lo, hi) of the local box [s0, s1] x [d0, d1] x [z0, z1]."""
        s = self.origin[self.along] + self.s_sign * np.array([s0, s1])
        d = self.origin[1 - self.along] + self.d_sign * np.array([d0, d1])
        lo, hi = [0.0, 0.0, z0], [0.0, 0.0, z1]
        lo[self.along], hi[self.along] = s.min(), s.max()
        lo[1 - self.along], hi[1 - self.along] = d.min(), d.max()
        return tuple(lo), tuple(hi)

    def child(self, s: float, d: float, turned: bool = False) -> Placement:
        """The frame at local (s, d), turned by 180 degrees if `turned` (a chair facing back)."""
        origin = [0.0, 0.0]
        origin[self.along] = self.origin[self.along] + self.s_sign * s
        origin[1 - self.along] = self.origin[1 - self.along] + self.d_sign * d
        flip = -1.0 if turned else 1.0
        return Placement((origin[0], origin[1]), self.along, flip * self.s_sign,
                         flip * self.d_sign)


def bookshelf(boxes: BoxBuilder, at: Placement, width: float, depth: float,
              rng: np.random.Generator):
    """Open shelves on a plinth, filled with rows of books, a box or nothing."""
    height, board = rng.uniform(1.5, 2.1), 0.02
    wood = pick(rng, WOOD_COLORS)
    for box in ((0, width, 0, board, 0, height), (0, board, 0, depth, 0, height),
                (width - board, width, 0, depth, 0, height),
                (board, width - board, board, depth, height - board, height),
                (board, width - board, board, depth, 0, 0.08)):
        boxes.add(*at.box(*box), Material.WOOD, wood)
    z = 0.08
    while z < height - board - 0.2:
        gap = min(rng.uniform(0.28, 0.38), height - board - z)
        content = rng.random()
        if content < 0.7:  # books from one side, leaving a gap at the other
            start = board + rng.uniform(0.0, 0.1)
            end = width - board - rng.uniform(0.0, 0.4) * width
            if end - start > 0.1:
                boxes.add(*at.box(start, end, board, depth - rng.uniform(0.02, 0.06), z,
                                  z + gap * rng.uniform(0.7, 0.9)),
                          Material.BOOKS, (0.5, 0.5, 0.5), a=rng.uniform(0.025, 0.05))
        elif content < 0.85:
            size = min(width - 2 * board - 0.05, rng.uniform(0.25, 0.4))
            start = board + rng.uniform(0.0, width - 2 * board - size)
            boxes.add(*at.box(start, start + size, board + 0.02, depth - 0.02, z,
                              z + gap * rng.uniform(0.6, 0.85)),
                      Material.CARDBOARD, jitter(rng, CARDBOARD_COLOR))
        z += gap
        if z < height - board - 0.05:
            boxes.add(*at.box(board, width - board, board, depth, z, z + board), Material.WOOD,
                      wood)
            z += board


def cabinet(boxes: BoxBuilder, at: Placement, width: float, depth: float,
            rng: np.random.Generator):
    """A sideboard: painted doors or drawers under a wooden top, maybe a box on it."""
    height = rng.uniform(0.7, 1.0)
    doors = max(1, round(width / rng.uniform(0.4, 0.6)))
    drawer = rng.uniform(0.15, 0.25) if rng.random() < 0.5 else 0.0
    boxes.add(*at.box(0, width, 0, depth, 0, height - 0.03), Material.CABINET,
              pick(rng, PAINT_COLORS), a=width / doors, b=drawer)
    boxes.add(*at.box(-0.02, width + 0.02, 0, depth + 0.02, height - 0.03, height),
              Material.WOOD, pick(rng, WOOD_COLORS))
    if rng.random() < 0.5:
        size = rng.uniform(0.2, 0.4, size=3)
        start = rng.uniform(0, width - size[0])
        boxes.add(*at.box(start, start + size[0], 0.02, min(0.02 + size[1], depth), height,
                          height + size[2]), Material.CARDBOARD, jitter(rng, CARDBOARD_COLOR))


def wardrobe(boxes: BoxBuilder, at: Placement, width: float, depth: float,
             rng: np.random.Generator):
    """A tall cupboard with full-height doors."""
    doors = 2 if width < 1.2 else 3
    boxes.add(*at.box(0, width, 0, depth, 0, rng.uniform(1.8, 2.2)), Material.CABINET,
              pick(rng, PAINT_COLORS), a=width / doors)


def sofa(boxes: BoxBuilder, at: Placement, width: float, depth: float,
         rng: np.random.Generator):
    """Back, two arms and a seat of seat cushions on a wooden plinth (an armchair if narrow)."""
    fabric = pick(rng, FABRIC_COLORS)
    arm = 0.18
    cushions = max(1, round((width - 2 * arm) / 0.65))
    boxes.add(*at.box(0.05, width - 0.05, 0.05, depth - 0.05, 0, 0.08), Material.WOOD,
              pick(rng, WOOD_COLORS))
    boxes.add(*at.box(0, width, 0, 0.22, 0.08, rng.uniform(0.75, 0.88)), Material.FABRIC,
              fabric)
    boxes.add(*at.box(arm, width - arm, 0.22, depth, 0.08, 0.44), Material.FABRIC, fabric,
              a=(width - 2 * arm) / cushions)
    arm_top = rng.uniform(0.58, 0.66)
    for s0 in (0, width - arm):
        boxes.add(*at.box(s0, s0 + arm, 0, depth, 0.08, arm_top), Material.FABRIC, fabric)


def chair(boxes: BoxBuilder, at: Placement, wood: np.ndarray):
    """A 0.44 m wide wooden chair, its back along d = 0 and its seat towards +d."""
    for s0 in (0.0, 0.4):
        for d0 in (0.0, 0.38):
            boxes.add(*at.box(s0, s0 + 0.04, d0, d0 + 0.04, 0, 0.43), Material.WOOD, wood)
    boxes.add(*at.box(0, 0.44, 0, 0.42, 0.43, 0.47), Material.WOOD, wood)
    boxes.add(*at.box(0, 0.44, 0, 0.03, 0.47, 0.88), Material.WOOD, wood)


def table(boxes: BoxBuilder, at: Placement, width: float, depth: float,
          rng: np.random.Generator, chairs: tuple[int, int] = (0, 1), on_top: bool = True):
    """A table on four legs with `chairs` (behind, in front) pulled up to its long sides, and
    maybe a screen or a box on it."""
    top, leg = rng.uniform(0.72, 0.76), 0.05
    wood = pick(rng, WOOD_COLORS)
    boxes.add(*at.box(0, width, 0, depth, top - 0.03, top), Material.WOOD, wood)
    for s0 in (0.03, width - 0.03 - leg):
        for d0 in (0.03, depth - 0.03 - leg):
            boxes.add(*at.box(s0, s0 + leg, d0, d0 + leg, 0, top - 0.03), Material.WOOD, wood)
    chair_wood = pick(rng, WOOD_COLORS)
    for side, count in enumerate(chairs):
        for k in range(count):
            s = (k + 0.5) * width / count + (0.22 if side else -0.22)  # the chair's s = 0
            if side == 0:  # behind the table (d < 0), seat towards it
                chair(boxes, at.child(s, -rng.uniform(0.35, 0.5)), chair_wood)
            else:          # in front, turned to face it
                chair(boxes, at.child(s, depth + rng.uniform(0.35, 0.5), turned=True),
                      chair_wood)
    if on_top and rng.random() < 0.6:
        if rng.random() < 0.5:  # a screen on a stand: a dark picture with a thin bezel
            s = rng.uniform(0.1, width - 0.65)
            boxes.add(*at.box(s + 0.22, s + 0.33, 0.1, 0.2, top, top + 0.12), Material.TRIM,
                      (0.15, 0.15, 0.16))
            boxes.add(*at.box(s, s + 0.55, 0.12, 0.15, top + 0.12, top + 0.45),
                      Material.PICTURE, (0.12, 0.16, 0.24), a=0.012, b=0.08)
        else:
            size = rng.uniform(0.2, 0.4, size=3)
            s = rng.uniform(0.05, width - size[0] - 0.05)
            boxes.add(*at.box(s, s + size[0], 0.05, min(0.05 + size[1], depth - 0.05), top,
                              top + size[2]), Material.CARDBOARD, jitter(rng, CARDBOARD_COLOR))


def desk(boxes: BoxBuilder, at: Placement, width: float, depth: float,
         rng: np.random.Generator):
    """A table against the wall, a chair in front of it more often than not."""
    table(boxes, at, width, depth, rng, chairs=(0, int(rng.random() < 0.6)))


def dining_table(boxes: BoxBuilder, at: Placement, width: float, depth: float,
                 rng: np.random.Generator):
    """A free-standing table with chairs on both long sides."""
    per_side = 1 if width < 1.4 else 2
    table(boxes, at, width, depth, rng, chairs=(per_side, per_side), on_top=False)


def island(boxes: BoxBuilder, at: Placement, width: float, depth: float,
           rng: np.random.Generator):
    """A free-standing kitchen block: cabinets under a worktop."""
    doors = max(1, round(width / 0.5))
    boxes.add(*at.box(0, width, 0, depth, 0, 0.86), Material.CABINET, pick(rng, PAINT_COLORS),
              a=width / doors, b=rng.choice([0.0, 0.22]))
    boxes.add(*at.box(-0.03, width + 0.03, -0.03, depth + 0.03, 0.86, 0.9), Material.WOOD,
              pick(rng, WOOD_COLORS))


def box_stack(boxes: BoxBuilder, at: Placement, width: float, depth: float,
              rng: np.random.Generator):
    """Moving boxes: one or two on the floor, maybe a smaller one on top."""
    s = 0.0
    while s < width - 0.3:
        size = (min(rng.uniform(0.3, 0.6), width - s), rng.uniform(0.3, depth),
                rng.uniform(0.25, 0.55))
        boxes.add(*at.box(s, s + size[0], 0, size[1], 0, size[2]), Material.CARDBOARD,
                  jitter(rng, CARDBOARD_COLOR))
        if rng.random() < 0.4:
            inset = rng.uniform(0.0, 0.08, size=2)
            boxes.add(*at.box(s + inset[0], s + size[0] - inset[1], inset[1],
                              size[1] - inset[0], size[2], size[2] + rng.uniform(0.15, 0.35)),
                      Material.CARDBOARD, jitter(rng, CARDBOARD_COLOR))
        s += size[0] + rng.uniform(0.02, 0.2)


@dataclass(frozen=True)
class Piece:
    build: object                  # build(boxes, placement, width, depth, rng)
    width: tuple[float, float]     # along its back, metres
    depth: tuple[float, float]     # out from its back, chairs not included


AGAINST_WALL = (Piece(bookshelf, (0.6, 1.2), (0.28, 0.38)),
                Piece(cabinet, (0.8, 1.8), (0.4, 0.55)),
                Piece(wardrobe, (0.8, 1.6), (0.5, 0.62)),
                Piece(sofa, (1.6, 2.4), (0.8, 0.95)),
                Piece(desk, (1.0, 1.6), (0.6, 0.8)),
                Piece(box_stack, (0.4, 1.2), (0.3, 0.6)))
FREE_STANDING = (Piece(dining_table, (1.1, 1.8), (0.75, 1.0)),
                 Piece(island, (1.0, 1.8), (0.6, 0.9)),
                 Piece(sofa, (1.6, 2.2), (0.8, 0.95)),
                 Piece(sofa, (0.8, 0.95), (0.8, 0.9)),  # armchair
                 Piece(bookshelf, (0.8, 1.2), (0.3, 0.4)),
                 Piece(box_stack, (0.4, 1.0), (0.3, 0.6)))
