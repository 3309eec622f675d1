"""The renderer's depth against closed-form geometry, on a hand-built scene."""
import numpy as np
import pytest

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.synthetic import raycast
from hybrid_depth_core.synthetic.drive import R_BODY_OPTICAL
from hybrid_depth_core.synthetic.scene import Boxes, Material, Poles, Scene

HEIGHT = 1.5   # camera above the ground
WALL_X = 10.0  # a wall facing the camera, 10 m ahead
POLE = (6.0, 0.0, 0.2, 5.0)  # x, y, radius, height


def _scene(with_wall=True, with_pole=True) -> Scene:
    boxes = Boxes(lo=np.array([[WALL_X, -50.0, 0.0]]), hi=np.array([[WALL_X + 2, 50.0, 100.0]]),
                  material=np.array([Material.FACADE]), color=np.full((1, 3), 0.5, np.float32),
                  pattern=np.array([[0, 0, 3.0, 3.0]], np.float32))
    if not with_wall:
        boxes = Boxes(lo=np.zeros((0, 3)), hi=np.zeros((0, 3)), material=np.zeros(0, int),
                      color=np.zeros((0, 3), np.float32), pattern=np.zeros((0, 4), np.float32))
    x, y, radius, height = POLE
    poles = Poles(center=np.array([[x, y]]), radius=np.array([radius]), height=np.array([height]),
                  color=np.full((1, 3), 0.4, np.float32), pattern=np.zeros((1, 2), np.float32))
    if not with_pole:
        poles = Poles(center=np.zeros((0, 2)), radius=np.zeros(0), height=np.zeros(0),
                      color=np.zeros((0, 3), np.float32), pattern=np.zeros((0, 2), np.float32))
    return Scene(road_half_width=5.0, sidewalk_width=2.0, boxes=boxes, poles=poles,
                 sun=np.array([0.0, 0.0, 1.0]))


def _cast(scene, camera=None, max_depth=200.0):
    camera = camera or PinholeCamera.from_fov(160, 96, 80.0, principal_offset=(0.03, -0.02))
    pose = np.eye(4)
    pose[:3, :3] = R_BODY_OPTICAL  # looking along +x, level
    pose[:3, 3] = (0.0, 0.0, HEIGHT)
    dirs = raycast.world_rays(camera.pixel_rays(), pose)
    return camera, raycast.cast(scene, camera, pose, dirs, max_depth)


def test_ground_pixel_depth_is_the_analytic_ray_plane_depth():
    camera, hits = _cast(_scene(with_wall=False, with_pole=False), max_depth=200.0)
    v = np.arange(camera.height)
    with np.errstate(divide='ignore'):
        depth = HEIGHT * camera.fy / (v - camera.cy)  # same for every column
    ground = (v > camera.cy) & (depth < 200.0)
    assert ground.sum() > camera.height // 3
    assert np.all(hits.material[ground] == Material.GROUND)
    np.testing.assert_allclose(hits.depth[ground],
                               np.repeat(depth[ground, None], camera.width, 1), rtol=1e-9)
    assert np.all(np.isinf(hits.depth[~ground])) and np.all(hits.material[~ground] == Material.SKY)


def test_a_wall_ahead_occludes_the_ground_behind_it():
    camera, hits = _cast(_scene(with_pole=False))
    v = np.arange(camera.height, dtype=float)
    with np.errstate(divide='ignore'):
        ground = np.where(v > camera.cy, HEIGHT * camera.fy / (v - camera.cy), np.inf)
    expected = np.minimum(ground, WALL_X)  # every ray's forward component is 1 per unit depth
    np.testing.assert_allclose(hits.depth, np.repeat(expected[:, None], camera.width, 1),
                               rtol=1e-9)
    on_wall = hits.material == Material.FACADE
    assert on_wall[: int(camera.cy)].all()
    assert np.all(hits.face[on_wall] == 0)  # the -x face: its normal points at the camera


def test_pole_depth_matches_circle_intersection():
    camera, hits = _cast(_scene())
    x, y, radius, height = POLE
    # Column nearest the pole's centre; rays there have world direction (1, -a, -b) * depth.
    u = int(round(camera.cx))
    a = (u - camera.cx) / camera.fx
    # (t - x)^2 + (a t + y)^2 = r^2 with y = 0, the nearer root:
    qa, qb, qc = 1 + a * a, -2 * x, x * x - radius * radius
    t = (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
    rows = [v for v in range(camera.height)
            if 0 < HEIGHT - t * (v - camera.cy) / camera.fy < height]
    assert rows, 'the pole should span several rows'
    assert np.all(hits.material[rows, u] == Material.POLE)
    np.testing.assert_allclose(hits.depth[rows, u], t, rtol=1e-9)


def test_a_wall_beside_the_camera_straddling_the_image_plane():
    """A box from 10 m behind to 30 m ahead of the camera, 3 m to its left: corners behind the
    camera must not cull it, and its -y face has depth 3 * fx / (cx - u) in each column."""
    wall = Boxes(lo=np.array([[-10.0, 3.0, 0.0]]), hi=np.array([[30.0, 4.0, 50.0]]),
                 material=np.array([Material.FACADE]), color=np.full((1, 3), 0.5, np.float32),
                 pattern=np.array([[0, 0, 3.0, 3.0]], np.float32))
    empty = _scene(with_wall=False, with_pole=False)
    scene = Scene(road_half_width=5.0, sidewalk_width=2.0, boxes=wall, poles=empty.poles,
                  sun=empty.sun)
    camera, hits = _cast(scene)
    on_wall = hits.material == Material.FACADE
    assert on_wall.any()
    v, u = np.nonzero(on_wall)
    np.testing.assert_allclose(hits.depth[v, u], 3.0 * camera.fx / (camera.cx - u), rtol=1e-9)
    assert np.all(hits.face[on_wall] == 2)  # axis y, normal towards -y (the camera)
    assert np.all(u < camera.cx)  # only left of the principal point


def test_nothing_beyond_max_depth_is_rendered():
    camera, hits = _cast(_scene(with_wall=False, with_pole=False), max_depth=20.0)
    finite = np.isfinite(hits.depth)
    assert finite.any() and hits.depth[finite].max() < 20.0
    assert np.all(hits.material[~finite] == Material.SKY)


@pytest.mark.parametrize('size', [(17, 16), (64, 48), (333, 101)])
def test_any_resolution(size):
    width, height = size
    camera, hits = _cast(_scene(with_pole=False), PinholeCamera.from_fov(width, height, 70.0))
    assert hits.depth.shape == (height, width)
    bottom = height - 1  # the bottom row sees the ground just in front of the camera
    np.testing.assert_allclose(hits.depth[bottom], HEIGHT * camera.fy / (bottom - camera.cy),
                               rtol=1e-9)
