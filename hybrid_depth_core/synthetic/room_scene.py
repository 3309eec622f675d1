"""A procedural room: the static indoor world the synthetic walk (room.py) is rendered from.

World frame: x along the main room, y across it, z up; its floor is [0, length] x [0, width]
at z = 0. Everything is an axis-aligned box: floor, walls and ceiling are slabs just outside
the free space (the camera is never inside one), furniture stands on the floor or against the
walls, pictures hang on them. A doorway in the wall y = width opens onto a corridor closed at
both ends, so every ray hits a surface within a few metres: no sky, no unbounded depth.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hybrid_depth_core.synthetic.room_furniture import (AGAINST_WALL, FREE_STANDING,
                                                        WOOD_COLORS, BoxBuilder, Placement,
                                                        bookshelf, box_stack, cabinet, jitter,
                                                        pick)
from hybrid_depth_core.synthetic.scene import Material, Poles, Scene

SLAB = 0.12          # thickness of walls, floor and ceiling
GRID = 0.1           # metres between the points of the floor plan the camera may stand on
MIN_WALK_AREA = 2.0  # square metres the camera keeps to walk in, whatever the furniture
# Off-white, cream, light grey, pale blue, sage, warm beige, pale yellow.
PAINTS = np.array([[0.86, 0.85, 0.80], [0.88, 0.83, 0.72], [0.76, 0.77, 0.78],
                   [0.70, 0.78, 0.84], [0.72, 0.78, 0.68], [0.84, 0.76, 0.64],
                   [0.90, 0.86, 0.62]])
TILES = np.array([[0.78, 0.76, 0.72], [0.45, 0.45, 0.47], [0.70, 0.60, 0.50],
                  [0.85, 0.85, 0.85]])
RUGS = np.array([[0.60, 0.16, 0.14], [0.20, 0.26, 0.45], [0.72, 0.64, 0.50],
                 [0.26, 0.40, 0.30]])


@dataclass(frozen=True)
class RoomConfig:
    """Knobs of the room generator. Ranges are (low, high), sampled uniformly per room."""

    length: tuple[float, float] = (4.0, 7.0)          # main room along x, metres
    width: tuple[float, float] = (3.5, 6.0)           # across; the doorway is in y = width
    height: tuple[float, float] = (2.4, 3.0)          # floor to ceiling
    corridor_width: tuple[float, float] = (1.3, 2.2)  # beyond the doorway
    free_standing: tuple[int, int] = (1, 3)           # pieces of furniture away from the walls
    clearance: float = 0.7   # the camera stays this far (horizontally) from walls and furniture

    def __post_init__(self):
        bounds = {'length': (4.0, 8.0), 'width': (3.5, 6.5), 'height': (2.3, 3.5),
                  'corridor_width': (1.0, 3.0)}
        for name, (low, high) in bounds.items():
            a, b = getattr(self, name)
            if not low <= a <= b <= high:
                raise ValueError(f'room.{name} must satisfy {low} <= low <= high <= {high} m, '
                                 f'got {(a, b)}')
        a, b = self.free_standing
        if not 0 <= a <= b <= 5:
            raise ValueError(f'room.free_standing must satisfy 0 <= low <= high <= 5, got '
                             f'{(a, b)}')
        if not 0.5 <= self.clearance <= 1.0:
            raise ValueError(f'room.clearance must be in [0.5, 1.0] m, got {self.clearance}')


@dataclass(frozen=True)
class Room:
    scene: Scene
    size: tuple[float, float, float]  # length, width, height of the main room
    obstacles: np.ndarray             # (K, 2, 2) x-y (lo, hi) of furniture footprints
    walkable: np.ndarray              # (N, 2) x-y of one connected area the camera may use

    def clearance(self, xy: np.ndarray) -> np.ndarray:
        """(M,) horizontal distance from points (M, 2) of the main room to the nearest wall or
        piece of furniture."""
        return _clearance(self.size, self.obstacles, xy)


def _clearance(size, obstacles: np.ndarray, xy: np.ndarray) -> np.ndarray:
    length, width, _ = size
    walls = np.minimum(np.minimum(xy[:, 0], length - xy[:, 0]),
                       np.minimum(xy[:, 1], width - xy[:, 1]))
    if not len(obstacles):
        return walls
    outside = np.maximum(np.maximum(obstacles[None, :, 0] - xy[:, None],
                                    xy[:, None] - obstacles[None, :, 1]), 0.0)
    return np.minimum(walls, np.sqrt((outside ** 2).sum(axis=-1)).min(axis=1))


@dataclass
class _Wall:
    at: Placement    # s along the wall, d into the room
    length: float
    budget: float    # how far furniture against it may reach into the room
    standing: list = field(default_factory=list)  # (s0, s1, top) of what stands against it


def generate_room(config: RoomConfig, rng: np.random.Generator) -> Room:
    """A furnished room with a corridor behind its doorway, and where in it the camera may go."""
    size = tuple(rng.uniform(*r) for r in (config.length, config.width, config.height))
    length, width, height = size
    boxes = BoxBuilder(rng)
    trim = (jitter(rng, np.array([0.9, 0.9, 0.88]), 0.03) if rng.random() < 0.6
            else pick(rng, WOOD_COLORS))
    door = _shell(boxes, config, size, trim, rng)
    walls = [_Wall(Placement((0.0, 0.0), 0), length, 0.0),
             _Wall(Placement((0.0, width), 0, d_sign=-1.0), length, 0.0),
             _Wall(Placement((0.0, 0.0), 1), width, 0.0),
             _Wall(Placement((length, 0.0), 1, d_sign=-1.0), width, 0.0)]
    # Furniture against a wall may not reach so far that no room is left to walk between it
    # and what stands against the opposite wall.
    for wall, across in zip(walls, (width, width, length, length)):
        wall.budget = (across - 2 * config.clearance - 1.2) / 2
    taken = [_rect(walls[1].at.box(door[0] - 0.4, door[1] + 0.4, 0.0, 1.0, 0, 0))]
    doors = {1: [(door[0] - 0.07, door[1] + 0.07)]}  # with their frames
    closed = rng.integers(4)
    if closed != 1:  # a closed door on another wall
        wall = walls[closed]
        door_width = rng.uniform(0.8, 0.9)
        s = rng.uniform(0.3, wall.length - door_width - 0.3)
        _add_door(boxes, wall.at, s, door_width, rng.uniform(2.0, 2.1), trim, rng)
        doors[closed] = [(s - 0.07, s + door_width + 0.07)]
        taken.append(_rect(wall.at.box(s - 0.1, s + door_width + 0.1, 0.0, 0.9, 0, 0)))
    obstacles: list[np.ndarray] = []
    _furnish_walls(boxes, walls, taken, obstacles, rng)
    _place_free_standing(boxes, config, size, taken, obstacles, rng)
    skirting = rng.uniform(0.06, 0.12)
    for k, wall in enumerate(walls):
        for s0, s1 in _gaps(0.0, wall.length, doors.get(k, [])):
            boxes.add(*wall.at.box(s0, s1, 0.0, 0.015, 0.0, skirting), Material.TRIM, trim)
        _hang_pictures(boxes, wall, doors.get(k, []), rng)
    for _ in range(rng.integers(1, 3)):
        _add_lamp(boxes, (0.5, length - 0.5), (0.5, width - 0.5), height, rng)
    obstacles = np.array(obstacles).reshape(-1, 2, 2)
    walkable = _walkable(size, obstacles, config.clearance)
    if rng.random() < 0.6:
        _add_rug(boxes, size, walkable[rng.integers(len(walkable))], rng)
    light = np.array([rng.uniform(-0.35, 0.35), rng.uniform(-0.35, 0.35), 1.0])
    no_poles = Poles(center=np.zeros((0, 2)), radius=np.zeros(0), height=np.zeros(0),
                     color=np.zeros((0, 3), np.float32), pattern=np.zeros((0, 2), np.float32))
    scene = Scene(road_half_width=0.0, sidewalk_width=0.0, boxes=boxes.build(), poles=no_poles,
                  sun=light / np.linalg.norm(light), ground_plane=False)
    return Room(scene=scene, size=size, obstacles=obstacles, walkable=walkable)


def _shell(boxes: BoxBuilder, config: RoomConfig, size, trim, rng) -> tuple[float, float]:
    """Floor, ceiling and walls of the main room and of the corridor behind its doorway.
    Returns the doorway's x extent."""
    length, width, height = size
    t = SLAB
    paint = pick(rng, PAINTS, 0.03)
    floor = _floor_finish(rng)
    boxes.add((-t, -t, -t), (length + t, width + t, 0.0), *floor)
    panels = rng.uniform(0.55, 0.65) if rng.random() < 0.5 else 0.0
    boxes.add((-t, -t, height), (length + t, width + t, height + t), Material.CEILING,
              jitter(rng, np.array([0.88, 0.88, 0.86]), 0.03), a=panels)
    accent = pick(rng, PAINTS, 0.03) if rng.random() < 0.3 else paint
    boxes.add((-t, -t, 0.0), (0.0, width + t, height), Material.WALL, paint)
    boxes.add((length, -t, 0.0), (length + t, width + t, height), Material.WALL, paint)
    boxes.add((0.0, -t, 0.0), (length, 0.0, height), Material.WALL, accent)
    door_width, top = rng.uniform(0.8, 1.3), rng.uniform(2.0, 2.15)
    x0 = rng.uniform(0.3, length - 0.3 - door_width)
    x1 = x0 + door_width
    for lo, hi in (((0.0, width, 0.0), (x0, width + t, height)),
                   ((x1, width, 0.0), (length, width + t, height)),
                   ((x0, width, top), (x1, width + t, height))):
        boxes.add(lo, hi, Material.WALL, paint)
    for lo, hi in (((x0 - 0.07, width - 0.02, 0.0), (x0, width, top + 0.07)),
                   ((x1, width - 0.02, 0.0), (x1 + 0.07, width, top + 0.07)),
                   ((x0 - 0.07, width - 0.02, top), (x1 + 0.07, width, top + 0.07))):
        boxes.add(lo, hi, Material.TRIM, trim)
    _corridor(boxes, config, size, (x0, x1, top), floor if rng.random() < 0.5 else None, rng)
    return x0, x1


def _corridor(boxes: BoxBuilder, config: RoomConfig, size, door, floor, rng):
    """The space seen through the doorway: closed at both ends and no deeper than needed to
    keep it within ~8 m of the room's far side. Rays only enter it through the doorway (going
    +y), so its side facing the room needs no wall."""
    length, width, height = size
    x0, x1, top = door
    t = SLAB
    depth = max(1.0, min(rng.uniform(*config.corridor_width), 7.6 - width))
    y0, y1 = width + t, width + t + depth
    c0, c1 = x0 - rng.uniform(0.8, 2.5), x1 + rng.uniform(0.8, 2.5)
    ceiling = rng.uniform(max(top + 0.15, 2.3), max(height, top + 0.15))
    boxes.add((c0 - t, width, -t), (c1 + t, y1 + t, 0.0), *(floor or _floor_finish(rng)))
    boxes.add((c0 - t, width, ceiling), (c1 + t, y1 + t, ceiling + t), Material.CEILING,
              jitter(rng, np.array([0.88, 0.88, 0.86]), 0.03))
    paint = pick(rng, PAINTS, 0.03)
    boxes.add((c0 - t, y1, 0.0), (c1 + t, y1 + t, ceiling), Material.WALL, paint)
    boxes.add((c0 - t, y0, 0.0), (c0, y1, ceiling), Material.WALL, paint)
    boxes.add((c1, y0, 0.0), (c1 + t, y1, ceiling), Material.WALL, paint)
    back = _Wall(Placement((c0, y1), 0, d_sign=-1.0), c1 - c0, 0.0)
    boxes.add(*back.at.box(0.0, c1 - c0, 0.0, 0.015, 0.0, 0.08), Material.TRIM,
              jitter(rng, np.array([0.9, 0.9, 0.88]), 0.03))
    if rng.random() < 0.6 and depth > 1.2:
        piece = (bookshelf, cabinet, box_stack)[rng.integers(3)]
        width_ = rng.uniform(0.6, 1.2)
        s = rng.uniform(0.0, c1 - c0 - width_)
        piece(boxes, back.at.child(s, 0.0), width_, min(0.45, depth - 0.7), rng)
        back.standing.append((s, s + width_, 2.2))
    _hang_pictures(boxes, back, [], rng)
    _add_lamp(boxes, (c0 + 0.4, c1 - 0.4), (y0 + 0.4, y1 - 0.4), ceiling, rng)


def _floor_finish(rng) -> tuple:
    """(material, colour, a, b) of a wooden or tiled floor."""
    if rng.random() < 0.6:
        return (Material.FLOOR_WOOD, pick(rng, WOOD_COLORS), rng.uniform(0.12, 0.22),
                rng.uniform(0.9, 1.8))
    return Material.FLOOR_TILE, pick(rng, TILES), rng.uniform(0.3, 0.6), 0.0


def _add_door(boxes: BoxBuilder, at: Placement, s: float, width: float, height: float, trim,
              rng):
    """A closed door standing 15 mm proud of the wall, in a 25 mm frame."""
    color = (jitter(rng, np.array([0.9, 0.9, 0.88]), 0.03) if rng.random() < 0.5
             else pick(rng, WOOD_COLORS))
    boxes.add(*at.box(s, s + width, 0.0, 0.015, 0.0, height), Material.DOOR, color,
              a=float(rng.random() < 0.5))
    for box in ((s - 0.07, s, 0.0, 0.025, 0.0, height + 0.07),
                (s + width, s + width + 0.07, 0.0, 0.025, 0.0, height + 0.07),
                (s - 0.07, s + width + 0.07, 0.0, 0.025, height, height + 0.07)):
        boxes.add(*at.box(*box), Material.TRIM, trim)


def _furnish_walls(boxes: BoxBuilder, walls: list[_Wall], taken: list, obstacles: list, rng):
    """Walk along each wall, leaving bare stretches or standing a piece against it where it
    fits: within the wall's budget and clear of everything placed so far."""
    for wall in walls:
        band = _rect(wall.at.box(-1.0, wall.length + 1.0, -0.01, wall.budget, 0, 0))
        s = rng.uniform(0.0, 0.4)
        while s < wall.length - 0.4:
            if rng.random() < 0.3:
                s += rng.uniform(0.4, 1.5)
                continue
            piece = AGAINST_WALL[rng.integers(len(AGAINST_WALL))]
            width = min(rng.uniform(*piece.width), wall.length - s)
            if width < piece.width[0]:
                s += 0.3
                continue
            mark = len(boxes)
            piece.build(boxes, wall.at.child(s, 0.0), width, rng.uniform(*piece.depth), rng)
            lo, hi = boxes.extent(mark)
            footprint = np.array([lo[:2], hi[:2]])
            if not _contains(band, footprint) or _overlaps(footprint, taken, 0.05):
                boxes.truncate(mark)
                s += 0.3
                continue
            taken.append(footprint)
            obstacles.append(footprint)
            wall.standing.append((s, s + width, hi[2]))
            s += width + rng.uniform(0.05, 0.8)


def _place_free_standing(boxes: BoxBuilder, config: RoomConfig, size, taken: list,
                         obstacles: list, rng):
    """Pieces in the room, facing any way, with a passage around each, as long as the camera
    keeps MIN_WALK_AREA to move in."""
    length, width, _ = size
    wanted = rng.integers(config.free_standing[0], config.free_standing[1] + 1)
    placed = 0
    for _ in range(12 * wanted):
        if placed == wanted:
            break
        piece = FREE_STANDING[rng.integers(len(FREE_STANDING))]
        at = Placement((rng.uniform(0.5, length - 0.5), rng.uniform(0.5, width - 0.5)),
                       int(rng.integers(2)), rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0]))
        mark = len(boxes)
        piece.build(boxes, at, rng.uniform(*piece.width), rng.uniform(*piece.depth), rng)
        lo, hi = boxes.extent(mark)
        footprint = np.array([lo[:2], hi[:2]])
        inside = _contains(np.array([[0.45, 0.45], [length - 0.45, width - 0.45]]), footprint)
        if (not inside or _overlaps(footprint, taken, 0.5)
                or len(_walkable(size, np.array(obstacles + [footprint]), config.clearance))
                * GRID ** 2 < MIN_WALK_AREA):
            boxes.truncate(mark)
            continue
        taken.append(footprint)
        obstacles.append(footprint)
        placed += 1


def _hang_pictures(boxes: BoxBuilder, wall: _Wall, doors: list, rng):
    """Up to three framed pictures or posters at eye height, not over doors or anything tall."""
    hung: list[tuple[float, float]] = []
    for _ in range(6):
        if len(hung) == 3:
            break
        w, h = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
        s, centre = rng.uniform(0.1, max(0.11, wall.length - w - 0.1)), rng.uniform(1.4, 1.7)
        clear = all(s1 < s - 0.1 or s0 > s + w + 0.1 for s0, s1 in doors + hung) and all(
            s1 < s or s0 > s + w or top < centre - h / 2 - 0.05
            for s0, s1, top in wall.standing)
        if not clear or s + w > wall.length - 0.05:
            continue
        boxes.add(*wall.at.box(s, s + w, 0.0, rng.uniform(0.015, 0.035), centre - h / 2,
                               centre + h / 2), Material.PICTURE, rng.uniform(0.15, 0.75, 3),
                  a=rng.uniform(0.015, 0.06), b=rng.uniform(0.05, 0.8))
        hung.append((s, s + w))


def _add_lamp(boxes: BoxBuilder, xs, ys, ceiling: float, rng):
    """A square or long ceiling light, 4 cm deep."""
    size = (0.6, 0.6) if rng.random() < 0.5 else ((1.2, 0.3), (0.3, 1.2))[rng.integers(2)]
    x = rng.uniform(xs[0], max(xs[0], xs[1] - size[0]))
    y = rng.uniform(ys[0], max(ys[0], ys[1] - size[1]))
    boxes.add((x, y, ceiling - 0.04), (x + size[0], y + size[1], ceiling), Material.LAMP,
              (0.95, 0.95, 0.92))


def _add_rug(boxes: BoxBuilder, size, centre: np.ndarray, rng):
    length, width, _ = size
    half = rng.uniform([0.6, 0.4], [1.2, 0.9])[:: rng.choice([-1, 1])]
    lo = np.maximum(centre - half, 0.1)
    hi = np.minimum(centre + half, (length - 0.1, width - 0.1))
    boxes.add((lo[0], lo[1], 0.0), (hi[0], hi[1], 0.008), Material.RUG, pick(rng, RUGS),
              a=rng.uniform(0.06, 0.2))


def _walkable(size, obstacles: np.ndarray, clearance: float) -> np.ndarray:
    """(N, 2) grid points with `clearance` (plus a margin for the camera's sway and the
    sampling of straight paths) to walls and furniture: the largest connected area of them."""
    length, width, _ = size
    xs, ys = np.arange(GRID / 2, length, GRID), np.arange(GRID / 2, width, GRID)
    grid = np.stack(np.meshgrid(xs, ys, indexing='ij'), axis=-1)
    free = (_clearance(size, obstacles.reshape(-1, 2, 2), grid.reshape(-1, 2))
            >= clearance + 0.05).reshape(grid.shape[:2])
    label = np.full(free.shape, -1)
    sizes = []
    for start in zip(*np.nonzero(free)):
        if label[start] >= 0:
            continue
        label[start] = len(sizes)
        queue, count = deque([start]), 0
        while queue:
            i, j = queue.popleft()
            count += 1
            for n in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                if (0 <= n[0] < free.shape[0] and 0 <= n[1] < free.shape[1] and free[n]
                        and label[n] < 0):
                    label[n] = len(sizes)
                    queue.append(n)
        sizes.append(count)
    if not sizes:
        return np.zeros((0, 2))
    return grid[label == int(np.argmax(sizes))]


def _rect(corners) -> np.ndarray:
    lo, hi = corners
    return np.array([lo[:2], hi[:2]])


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    return bool(np.all(inner[0] >= outer[0] - 1e-9) and np.all(inner[1] <= outer[1] + 1e-9))


def _overlaps(rect: np.ndarray, others: list, gap: float) -> bool:
    return any(np.all(rect[0] < other[1] + gap) and np.all(rect[1] > other[0] - gap)
               for other in others)


def _gaps(start: float, end: float, cuts: list) -> list[tuple[float, float]]:
    """[start, end] without the intervals `cuts`."""
    pieces, s = [], start
    for c0, c1 in sorted(cuts):
        if c0 > s:
            pieces.append((s, c0))
        s = max(s, c1)
    return pieces + ([(s, end)] if s < end else [])
