"""Surface colour of every hit: procedural textures that depend only on the 3D surface point.

Two properties matter for self-supervised training, and both are built in here:
- view consistency: a surface point has the same colour from every pose (Lambertian, no fog,
  no specular), so warping one frame into another with the true depth and pose reproduces it;
- no aliasing: every texture is band-limited to the pixel's footprint on the surface (noise
  octaves finer than ~2 pixels fade to their mean, and edges are box-filtered analytically),
  otherwise distant texture would sparkle differently in each frame and break the first property.

The street's materials are here, the room's in room_textures.py; both are built from the
band-limited patterns of patterns.py.
"""
from __future__ import annotations

import numpy as np

from hybrid_depth_core.synthetic.patterns import (band, cell_value, face_coordinates, fbm,
                                                  mix, stripes)
from hybrid_depth_core.synthetic.raycast import Hits
from hybrid_depth_core.synthetic.room_textures import ROOM_TEXTURES
from hybrid_depth_core.synthetic.scene import Material, Scene

_AMBIENT = 0.55  # share of light that does not depend on the surface orientation
# Edges are box-filtered over this many pixels: like a real lens's blur, and wide enough that
# bilinear resampling (what view synthesis does) reproduces them closely.
EDGE_BLUR_PIXELS = 2.0


def shade(scene: Scene, hits: Hits, origin: np.ndarray, dirs: np.ndarray,
          focal: float) -> np.ndarray:
    """RGB in [0, 1], (H, W, 3) float32, for the hits of `cast` (origin, dirs as given to it)."""
    rgb = np.empty((hits.depth.size, 3), np.float32)
    flat_dirs = dirs.reshape(-1, 3)
    sky = np.flatnonzero(hits.material.ravel() == Material.SKY)
    rgb[sky] = _sky(flat_dirs[sky].astype(np.float32))
    solid = np.flatnonzero(hits.material.ravel() != Material.SKY)
    d = flat_dirs[solid]
    t = hits.depth.ravel()[solid]
    points = (origin + t[:, None] * d).astype(np.float32)
    material = hits.material.ravel()[solid]
    index = hits.index.ravel()[solid]
    face = hits.face.ravel()[solid]
    normals = _normals(scene, face, index, points)
    # Pixel footprint on the surface: ray length / focal, stretched by the incidence angle. The
    # geometric mean of the two axes of the footprint ellipse trades a little blur for no aliasing.
    ray_norm = np.linalg.norm(d, axis=1)
    cos_incidence = np.abs(np.einsum('ij,ij->i', normals, d)) / ray_norm
    footprint = (t * ray_norm / focal / np.sqrt(np.maximum(cos_incidence, 0.02)))
    footprint = (EDGE_BLUR_PIXELS * footprint).astype(np.float32)

    face_axis = face // 2
    albedo = np.empty((len(t), 3), np.float32)
    for kind, texture in _TEXTURES.items():
        sel = np.flatnonzero(material == kind)
        if len(sel):
            albedo[sel] = texture(scene, points[sel], footprint[sel], index[sel], face_axis[sel])
    light = _AMBIENT + (1 - _AMBIENT) * np.maximum(normals @ scene.sun.astype(np.float32), 0)
    rgb[solid] = albedo * light[:, None]
    return np.clip(rgb, 0.0, 1.0).reshape(dirs.shape)


def _normals(scene: Scene, face: np.ndarray, index: np.ndarray,
             points: np.ndarray) -> np.ndarray:
    """Unit surface normals (N, 3) float32: from the box face, or radial on poles (face -1)."""
    normals = np.zeros((len(points), 3), np.float32)
    on_face = np.flatnonzero(face >= 0)
    normals[on_face, face[on_face] // 2] = np.where(face[on_face] % 2 == 1, 1.0, -1.0)
    on_pole = np.flatnonzero(face < 0)
    if len(on_pole):
        radial = points[on_pole, :2] - scene.poles.center[index[on_pole]].astype(np.float32)
        normals[on_pole, :2] = radial / np.linalg.norm(radial, axis=1, keepdims=True)
    return normals


# ------------------------------------------------------------------------------------ materials

def _ground(scene: Scene, points, footprint, index, face_axis) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    road = scene.road_half_width
    # Real asphalt is rough at every scale: a flat spectrum gives view synthesis something to
    # match on the road right in front of the camera, at any image resolution.
    grain = fbm(x, y, footprint, 1.6, 9, gain=0.8)
    patches = fbm(x + 311.0, y, footprint, 14.0, 3)
    asphalt = np.float32([0.30, 0.30, 0.31]) * (1 + 2.2 * grain + 0.8 * patches)[:, None]
    centre_line = stripes(x, 9.0, 1 / 3, footprint) * band(y, -0.08, 0.08, footprint)
    edge_line = band(np.abs(y), road - 0.45, road - 0.3, footprint)
    asphalt = mix(asphalt, np.float32([0.88, 0.88, 0.84]), np.maximum(centre_line, edge_line))

    tile = 0.6
    tiles = stripes(x, tile, 0.93, footprint) * stripes(y, tile, 0.93, footprint)
    tint = 1 + 0.3 * cell_value(np.floor(x / tile), np.floor(y / tile), tile, footprint)
    paving = np.float32([0.60, 0.57, 0.52]) * (tint * (1 + 1.4 * grain))[:, None]
    paving *= (0.55 + 0.45 * tiles)[:, None]
    on_road = band(np.abs(y), 0.0, road, footprint)
    return mix(paving, asphalt, on_road)


def _facade(scene: Scene, points, footprint, index, face_axis) -> np.ndarray:
    boxes = scene.boxes
    u, v = face_coordinates(points, face_axis)
    pattern = boxes.pattern[index]
    offset, spacing, floor = pattern[:, :2], pattern[:, 2], pattern[:, 3]
    u_off, v_off = u + offset[:, 0], v + offset[:, 1]
    wall = boxes.color[index] * (1 + 1.6 * fbm(u_off, v_off, footprint, 0.9, 8, gain=0.75))[
        :, None]
    courses = stripes(v, 0.075, 0.85, footprint)  # brick / panel courses
    wall *= (0.85 + 0.15 * courses)[:, None]
    column, storey = np.floor(u_off / spacing), np.floor(v / floor)
    window = (stripes(u_off - 0.25 * spacing, spacing, 0.5, footprint)
              * stripes(v - 0.3 * floor, floor, 0.5, footprint)
              * band(v, floor, np.inf, footprint))
    glass = np.float32([0.16, 0.21, 0.28]) * (
        1.0 + 0.9 * cell_value(column, storey, spacing, footprint)
        + 1.5 * fbm(u, v, footprint, 0.5, 4))[:, None]
    ground_floor = 1 - 0.3 * band(v, 0.0, floor, footprint)
    return mix(wall * ground_floor[:, None], glass, window)


def _car_body(scene: Scene, points, footprint, index, face_axis) -> np.ndarray:
    boxes = scene.boxes
    u, v = face_coordinates(points, face_axis)
    grain = fbm(u + boxes.pattern[index, 0], v, footprint, 0.4, 6)
    paint = boxes.color[index] * (1 + 0.5 * grain)[:, None]
    bumper = band(v, boxes.lo[index, 2], boxes.lo[index, 2] + 0.18, footprint)
    return mix(paint, np.float32([0.08, 0.08, 0.09]), bumper)


def _car_cabin(scene: Scene, points, footprint, index, face_axis) -> np.ndarray:
    boxes = scene.boxes
    u, v = face_coordinates(points, face_axis)
    grain = fbm(u + boxes.pattern[index, 0], v, footprint, 0.4, 5)
    paint = boxes.color[index] * (1 + 0.4 * grain)[:, None]
    glass_band = band(v, boxes.lo[index, 2] + 0.06, boxes.hi[index, 2] - 0.07, footprint)
    glass_band *= face_axis != 2  # the roof is painted
    glass = np.float32([0.07, 0.09, 0.12]) * (1 + 2.0 * fbm(u, v, footprint, 0.6, 4))[:, None]
    return mix(paint, glass, glass_band)


def _crate(scene: Scene, points, footprint, index, face_axis) -> np.ndarray:
    boxes = scene.boxes
    u, v = face_coordinates(points, face_axis)
    planks = stripes(v, 0.16, 0.9, footprint)
    grain = fbm(0.25 * (u + boxes.pattern[index, 0]), 4.0 * v, 4.0 * footprint, 0.5, 6)
    return boxes.color[index] * ((0.5 + 0.5 * planks) * (1 + 1.2 * grain))[:, None]


def _pole(scene: Scene, points, footprint, index, face_axis) -> np.ndarray:
    poles = scene.poles
    radial = points[:, :2] - poles.center[index].astype(np.float32)
    around = np.arctan2(radial[:, 1], radial[:, 0]) * poles.radius[index]
    z = points[:, 2]
    grain = fbm(around + poles.pattern[index, 0], z, footprint, 0.3, 5)
    metal = poles.color[index] * (1 + 0.8 * grain)[:, None]
    reflector = stripes(z - 1.8, 0.4, 0.5, footprint) * band(z, 1.8, 2.6, footprint)
    return mix(metal, np.float32([0.92, 0.90, 0.85]), reflector)


def _sky(dirs: np.ndarray) -> np.ndarray:
    """A function of direction only (the sky is at infinity), with clouds."""
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    elevation = np.clip(unit[:, 2], 0.0, 1.0)
    azimuth = np.arctan2(unit[:, 1], unit[:, 0])
    horizon, zenith = np.float32([0.80, 0.85, 0.90]), np.float32([0.32, 0.52, 0.85])
    sky = mix(horizon, zenith, np.clip(elevation * 3, 0, 1).astype(np.float32))
    clouds = np.clip(fbm(azimuth * 8, elevation * 25, np.full(len(unit), 0.02), 1.0, 5) * 3, 0, 1)
    return mix(sky, np.float32([0.95, 0.95, 0.96]), clouds.astype(np.float32))


_TEXTURES = {Material.GROUND: _ground, Material.FACADE: _facade, Material.CAR_BODY: _car_body,
             Material.CAR_CABIN: _car_cabin, Material.CRATE: _crate, Material.POLE: _pole,
             **ROOM_TEXTURES}
