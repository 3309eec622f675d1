"""Indoor materials (see room_scene.py): painted walls, wooden and tiled floors, ceiling panels,
furniture, books, pictures.

Built only from the band-limited patterns, so they keep the two properties textures.py names:
colour is a function of the surface point, and detail finer than the pixel footprint fades out.
Each function maps (scene, points (N, 3), footprint (N,), box index (N,), face axis (N,)) to
albedo (N, 3) float32. A box's `pattern` holds a texture offset (2) and two parameters whose
meaning depends on the material, named in each docstring as `a` and `b`.

Real rooms are much less textured than streets; the contrast here is low (plaster, paint) but
never zero, and every surface carries detail at several scales, so that matching has something
at any image resolution.
"""
from __future__ import annotations

import numpy as np

from hybrid_depth_core.synthetic.patterns import (band, cell_random, cell_value,
                                                  detail_weight, face_coordinates, fbm, mix,
                                                  stripes)
from hybrid_depth_core.synthetic.scene import Material

_PLATE = np.float32([0.90, 0.90, 0.88])       # sockets and switches
_SHADOW = np.float32([0.10, 0.09, 0.08])       # gaps between books, behind handles
_PAPER = np.float32([0.86, 0.83, 0.74])
_METAL = np.float32([0.55, 0.56, 0.58])
# Cloth bindings: dark red, navy, bottle green, ochre, black, cream, grey, brown.
_BOOK_COLORS = np.float32([[0.55, 0.12, 0.10], [0.12, 0.16, 0.38], [0.10, 0.32, 0.18],
                           [0.78, 0.58, 0.18], [0.10, 0.10, 0.11], [0.85, 0.80, 0.66],
                           [0.50, 0.50, 0.52], [0.42, 0.26, 0.14]])


def _offset_coordinates(scene, points, index, face_axis):
    """Face coordinates shifted by the box's texture offset (decorrelates boxes)."""
    u, v = face_coordinates(points, face_axis)
    offset = scene.boxes.pattern[index, :2]
    return u + offset[:, 0], v + offset[:, 1]


def _local(scene, points, index, face_axis):
    """Face coordinates from the box's min corner, and the face's width and height."""
    u, v = face_coordinates(points, face_axis)
    rows = np.arange(len(index))
    u_axis, v_axis = np.where(face_axis == 0, 1, 0), np.where(face_axis == 2, 1, 2)
    lo = scene.boxes.lo[index].astype(np.float32)
    hi = scene.boxes.hi[index].astype(np.float32)
    return (u - lo[rows, u_axis], v - lo[rows, v_axis],
            hi[rows, u_axis] - lo[rows, u_axis], hi[rows, v_axis] - lo[rows, v_axis])


def _is_front(scene, index, face_axis) -> np.ndarray:
    """Whether the face is a box's front (or back): perpendicular to its shorter horizontal
    side, which is how deep furniture against a wall is."""
    extent = scene.boxes.hi[index] - scene.boxes.lo[index]
    return face_axis == np.where(extent[:, 0] < extent[:, 1], 0, 1)


def _wall(scene, points, footprint, index, face_axis):
    """Painted plaster: faint blotches and roller marks at every scale, and a socket or a light
    switch every few metres."""
    boxes = scene.boxes
    u, v = _offset_coordinates(scene, points, index, face_axis)
    plaster = fbm(u, v, footprint, 0.5, 7, gain=0.75)
    blotches = fbm(u + 71.0, v, footprint, 2.0, 2)
    paint = boxes.color[index] * (1 + 0.45 * plaster + 0.3 * blotches)[:, None]
    spacing = 1.9
    cell = np.floor(u / spacing)
    across = u - (cell + 0.5) * spacing
    kind = cell_random(cell, 3)
    plate = band(across, -0.04, 0.04, footprint) * (
        band(v, 0.26, 0.34, footprint) * (kind < 0.35) + band(v, 1.06, 1.14, footprint)
        * (kind > 0.8))
    return mix(paint, _PLATE, plate)


def _floor_wood(scene, points, footprint, index, face_axis):
    """Planks along x, `a` wide and `b` long, their joints staggered from row to row."""
    boxes = scene.boxes
    pattern = boxes.pattern[index]
    x, y = points[:, 0] + pattern[:, 0], points[:, 1] + pattern[:, 1]
    width, length = pattern[:, 2], pattern[:, 3]
    row = np.floor(y / width)
    along = x + cell_random(row, 11) * length
    plank = np.floor(along / length)
    tint = 1 + 0.45 * cell_value(plank, row, width, footprint)
    # Grain: noise stretched along the plank (the footprint is scaled by the largest stretch).
    grain = fbm(0.12 * along, 3.0 * y, 3.0 * footprint, 0.5, 6, gain=0.7)
    joints = stripes(y, width, 0.97, footprint) * stripes(along, length, 0.99, footprint)
    return boxes.color[index] * (tint * (1 + 1.1 * grain) * (0.55 + 0.45 * joints))[:, None]


def _floor_tile(scene, points, footprint, index, face_axis):
    """Square stone tiles `a` wide, each a little different, in grey grout."""
    boxes = scene.boxes
    pattern = boxes.pattern[index]
    x, y = points[:, 0] + pattern[:, 0], points[:, 1] + pattern[:, 1]
    size = pattern[:, 2]
    duty = 1 - 0.006 / size
    tiles = stripes(x, size, duty, footprint) * stripes(y, size, duty, footprint)
    tint = 1 + 0.35 * cell_value(np.floor(x / size), np.floor(y / size), size, footprint)
    stone = fbm(x, y, footprint, 0.4, 7, gain=0.72)
    albedo = boxes.color[index] * (tint * (1 + 0.9 * stone))[:, None]
    return mix(np.float32([0.45, 0.44, 0.42]), albedo, tiles)


def _ceiling(scene, points, footprint, index, face_axis):
    """Mineral-fibre panels `a` wide in a grid of T-bars, or plain plaster where `a` is 0."""
    boxes = scene.boxes
    pattern = boxes.pattern[index]
    x, y = points[:, 0] + pattern[:, 0], points[:, 1] + pattern[:, 1]
    has_panels = pattern[:, 2] > 0
    size = np.where(has_panels, pattern[:, 2], 1.0)
    speckle = fbm(x, y, footprint, 0.12, 5, gain=0.85)
    soft = fbm(x + 5.0, y, footprint, 1.5, 3)
    tint = 1 + 0.2 * has_panels * cell_value(np.floor(x / size), np.floor(y / size), size,
                                             footprint)
    albedo = boxes.color[index] * (tint * (1 + 0.5 * speckle + 0.3 * soft))[:, None]
    duty = 1 - 0.024 / size
    panels = stripes(x, size, duty, footprint) * stripes(y, size, duty, footprint)
    return mix(_METAL, albedo, np.where(has_panels, panels, 1.0))


def _lamp(scene, points, footprint, index, face_axis):
    """A ceiling light: a bright diffuser behind a grid of louvres, in a metal frame."""
    u, v, width, height = _local(scene, points, index, face_axis)
    louvres = stripes(u, 0.1, 0.85, footprint) * stripes(v, 0.1, 0.85, footprint)
    inner = band(u, 0.03, width - 0.03, footprint) * band(v, 0.03, height - 0.03, footprint)
    diffuser = (0.75 + 0.25 * louvres)[:, None] * np.float32([1.0, 0.98, 0.93])
    return mix(_METAL, diffuser, inner * (face_axis == 2))


def _wood(scene, points, footprint, index, face_axis):
    """Furniture wood: grain along the face's horizontal direction, slow figure across it."""
    u, v = _offset_coordinates(scene, points, index, face_axis)
    grain = fbm(0.2 * u, 4.0 * v, 4.0 * footprint, 0.5, 6, gain=0.7)
    figure = fbm(u, v + 9.0, footprint, 0.8, 2)
    return scene.boxes.color[index] * (1 + 0.9 * grain + 0.3 * figure)[:, None]


def _cabinet(scene, points, footprint, index, face_axis):
    """Painted cabinet: on the front, doors `a` wide (drawers `b` high, or full-height doors
    where `b` is 0), each with a handle in its middle."""
    boxes = scene.boxes
    pattern = boxes.pattern[index]
    u, v, width, height = _local(scene, points, index, face_axis)
    door = pattern[:, 2]
    rows = np.where(pattern[:, 3] > 0, pattern[:, 3], height)
    front = _is_front(scene, index, face_axis)
    seams = np.where(front, stripes(u, door, 1 - 0.006 / door, footprint)
                     * stripes(v, rows, 1 - 0.006 / rows, footprint), 1.0)
    handle_v = np.minimum(0.5 * rows, 1.0)  # tall doors: at hand height
    handle = front * band(np.mod(u, door), 0.5 * door - 0.07, 0.5 * door + 0.07, footprint) * (
        band(np.mod(v, rows), handle_v - 0.012, handle_v + 0.012, footprint))
    u_off, v_off = _offset_coordinates(scene, points, index, face_axis)
    paint = boxes.color[index] * (1 + 0.3 * fbm(u_off, v_off, footprint, 0.4, 6, gain=0.7))[
        :, None]
    return mix(paint * (0.5 + 0.5 * seams)[:, None], _METAL, handle)


def _fabric(scene, points, footprint, index, face_axis):
    """Upholstery: a woven pile, with cushion seams every `a` metres along the front."""
    boxes = scene.boxes
    u, v = _offset_coordinates(scene, points, index, face_axis)
    weave = stripes(u, 0.008, 0.5, footprint) + stripes(v, 0.008, 0.5, footprint) - 1.0
    pile = fbm(u, v, footprint, 0.25, 6, gain=0.8)
    local_u = _local(scene, points, index, face_axis)[0]
    cushion = boxes.pattern[index, 2]
    seams = np.where(cushion > 0, stripes(local_u, np.maximum(cushion, 0.1), 0.975, footprint),
                     1.0)
    return boxes.color[index] * ((1 + 0.15 * weave + 0.8 * pile) * (0.7 + 0.3 * seams))[:, None]


def _books(scene, points, footprint, index, face_axis):
    """A shelf row of books `a` wide, spines out: each its own colour and height, some with a
    title band. Where books get narrower than the footprint they fade to the row's mean."""
    boxes = scene.boxes
    u, v, width, height = _local(scene, points, index, face_axis)
    book_width = boxes.pattern[index, 2]
    book = np.floor(u / book_width)
    row = np.floor(boxes.pattern[index, 0])
    pick, shade, tall = (cell_random(book, row + k) for k in range(3))
    visible = detail_weight(book_width, footprint)
    color = _BOOK_COLORS[(pick * len(_BOOK_COLORS)).astype(np.int32)] * (
        0.7 + 0.6 * shade)[:, None]
    color = mix(_BOOK_COLORS.mean(axis=0), color, visible)
    top = height * (1 - 0.3 * tall * visible)
    title = band(v, 0.55 * top, 0.65 * top, footprint) * (shade > 0.5)
    color = mix(color, _PAPER, 0.8 * title)
    spine = band(v, 0.0, top, footprint) * stripes(u, book_width, 0.9, footprint)
    front = _is_front(scene, index, face_axis)
    pages = _PAPER * _top_dimmed(face_axis)[:, None]  # in the shelf's shadow from above
    return np.where(front[:, None], mix(_SHADOW, color, spine), pages)


def _cardboard(scene, points, footprint, index, face_axis):
    """Cardboard boxes: fibrous brown, tape down the middle of the top and over its edges."""
    boxes = scene.boxes
    u, v, width, height = _local(scene, points, index, face_axis)
    u_off, v_off = _offset_coordinates(scene, points, index, face_axis)
    board = boxes.color[index] * (1 + 0.7 * fbm(u_off, v_off, footprint, 0.3, 6, gain=0.75))[
        :, None]
    top = face_axis == 2
    tape = band(u, 0.5 * width - 0.025, 0.5 * width + 0.025, footprint) * np.where(
        top, 1.0, band(v, height - 0.07, height, footprint))
    label = ~top * band(u, 0.15 * width, 0.45 * width, footprint) * band(
        v, 0.3 * height, 0.55 * height, footprint) * (0.8 + 0.2 * stripes(v, 0.02, 0.5,
                                                                          footprint))
    board = mix(board, np.float32([0.72, 0.62, 0.45]), 0.9 * tape)
    return mix(board, _PLATE, 0.9 * label)


def _picture(scene, points, footprint, index, face_axis):
    """A framed picture: a frame `a` wide, of brightness `b`, around an abstract painting
    (colour noise about the box colour)."""
    boxes = scene.boxes
    pattern = boxes.pattern[index]
    u, v, width, height = _local(scene, points, index, face_axis)
    frame = pattern[:, 2]
    inner = (band(u, frame, width - frame, footprint) * band(v, frame, height - frame, footprint)
             * _is_front(scene, index, face_axis))
    u_off, v_off = _offset_coordinates(scene, points, index, face_axis)
    paint = boxes.color[index] + 0.9 * np.stack(
        [fbm(u_off + 13.0 * k, v_off, footprint, 0.3, 5, gain=0.65) for k in range(3)], axis=1)
    frame_color = (pattern[:, 3] * _top_dimmed(face_axis))[:, None] * np.float32([1.0, 0.85, 0.6])
    return mix(frame_color, np.clip(paint, 0.02, 1.0), inner)


def _door(scene, points, footprint, index, face_axis):
    """A painted door with four sunken panels and a handle at `a` (0 or 1: left or right)."""
    boxes = scene.boxes
    u, v, width, height = _local(scene, points, index, face_axis)
    outline = np.zeros_like(u)
    for inset in (0.0, 0.025):  # a dark bevel 25 mm wide around each panel
        columns = (band(u, 0.12 + inset, 0.5 * width - 0.05 - inset, footprint)
                   + band(u, 0.5 * width + 0.05 + inset, width - 0.12 - inset, footprint))
        rows = (band(v, 0.15 + inset, 0.95 - inset, footprint)
                + band(v, 1.1 + inset, height - 0.15 - inset, footprint))
        outline += (1 if inset else -1) * columns * rows
    handle_u = np.where(boxes.pattern[index, 2] > 0.5, width - 0.1, 0.1)
    handle = band(u, handle_u - 0.06, handle_u + 0.06, footprint) * band(v, 1.0, 1.03, footprint)
    u_off, v_off = _offset_coordinates(scene, points, index, face_axis)
    paint = boxes.color[index] * (1 + 0.4 * fbm(u_off, v_off, footprint, 0.5, 6, gain=0.7)
                                  + 0.25 * outline)[:, None]
    return mix(paint, _METAL, handle * _is_front(scene, index, face_axis))


def _trim(scene, points, footprint, index, face_axis):
    """Skirting boards and door frames: painted, with a routed groove along their length."""
    boxes = scene.boxes
    u, v, width, height = _local(scene, points, index, face_axis)
    across = np.where(width > height, v, u)
    size = np.minimum(width, height)
    groove = band(across, 0.7 * size, 0.7 * size + 0.008, footprint)
    u_off, v_off = _offset_coordinates(scene, points, index, face_axis)
    paint = boxes.color[index] * (1 + 0.3 * fbm(u_off, v_off, footprint, 0.3, 5))[:, None]
    return paint * ((1 - 0.45 * groove) * _top_dimmed(face_axis))[:, None]


def _top_dimmed(face_axis: np.ndarray) -> np.ndarray:
    """Albedo factor that makes a thin part's top (a 1-3 cm strip, lit fully by the light from
    above) about as bright as its front: farther away such a strip is thinner than a pixel and
    would flicker from frame to frame as the rays hit or miss it."""
    return np.where(face_axis == 2, 0.65, 1.0).astype(np.float32)


def _rug(scene, points, footprint, index, face_axis):
    """A woven rug: a field of diamonds inside a border `a` wide, fuzzy pile at every scale."""
    boxes = scene.boxes
    u, v, width, height = _local(scene, points, index, face_axis)
    border = boxes.pattern[index, 2]
    field = band(u, border, width - border, footprint) * band(v, border, height - border,
                                                              footprint)
    diagonal = 1.42 * footprint  # the footprint along u +- v
    diamonds = (stripes(u + v, 0.35, 0.5, diagonal) - 0.5) * (stripes(u - v, 0.35, 0.5,
                                                                      diagonal) - 0.5)
    u_off, v_off = _offset_coordinates(scene, points, index, face_axis)
    pile = fbm(u_off, v_off, footprint, 0.2, 6, gain=0.8)
    color = boxes.color[index]
    pattern = mix(color * 0.45, mix(color, _PAPER, 2.0 * diamonds + 0.5), field)
    return pattern * (1 + 0.9 * pile)[:, None]


ROOM_TEXTURES = {Material.WALL: _wall, Material.FLOOR_WOOD: _floor_wood,
                 Material.FLOOR_TILE: _floor_tile, Material.CEILING: _ceiling,
                 Material.LAMP: _lamp, Material.WOOD: _wood, Material.CABINET: _cabinet,
                 Material.FABRIC: _fabric, Material.BOOKS: _books,
                 Material.CARDBOARD: _cardboard, Material.PICTURE: _picture,
                 Material.DOOR: _door, Material.TRIM: _trim, Material.RUG: _rug}
