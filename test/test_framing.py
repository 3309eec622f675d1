"""Any camera through a network trained on another: the image is resized to the training focal
length with its aspect ratio kept, cropped or padded to multiples of 32, and the depth comes
back with K following every step."""
import numpy as np
import pytest
import torch

from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.runtime.framing import far_from_training, plan
from hybrid_depth_core.runtime.predictor import DepthPredictor

TRAINING_SIZE = (320, 96)                     # 10:3
TRAINING_FOCAL = (0.58 * 320, 0.58 * 320)     # KITTI-like, square pixels
SIDE, DISTANCE = 2.0, 5.0                     # a 2 m square facing the camera 5 m away

CAMERAS = {
    '4:3': PinholeCamera(640, 480, 500.0, 500.0, 321.3, 236.8),
    '16:9': PinholeCamera(1280, 720, 900.0, 900.0, 644.0, 357.5),
    'twice the training focal': PinholeCamera(320, 96, 2 * TRAINING_FOCAL[0],
                                              2 * TRAINING_FOCAL[1], 161.0, 47.0),
}


class ApparentSizeNetwork(DepthPredictor):
    """A single-image depth prior reduced to its essence: it knows the square's size and reads
    depth from its apparent width at the training focal length (depth = f_train side / width),
    as a trained network reads depth from apparent sizes. Fed another focal length unchanged,
    it is wrong by the focal lengths' ratio."""

    def __init__(self, focal):
        self.warnings = []
        super().__init__(torch.nn.Identity(), None, TRAINING_SIZE, torch.device('cpu'),
                         focal=focal, warn=self.warnings.append)

    def step(self, image, K, previous=None, turn=None):
        row = image[0, 0, image.shape[2] // 2]            # the square's centre row, in [0, 1]
        width = max(float(row.sum()), 1e-3)               # anti-aliased: sub-pixel accurate
        depth = TRAINING_FOCAL[0] * SIDE / width
        return torch.full((1, 1, *image.shape[2:]), depth), None


def render_square(camera: PinholeCamera) -> np.ndarray:
    """The square (white, on black) at DISTANCE on the optical axis, 4x supersampled."""
    factor = 4
    fine = PinholeCamera(camera.width * factor, camera.height * factor, camera.fx * factor,
                         camera.fy * factor, (camera.cx + 0.5) * factor - 0.5,
                         (camera.cy + 0.5) * factor - 0.5)
    rays = fine.pixel_rays() * DISTANCE
    inside = (np.abs(rays[..., 0]) < SIDE / 2) & (np.abs(rays[..., 1]) < SIDE / 2)
    grey = inside.reshape(camera.height, factor, camera.width, factor).mean(axis=(1, 3))
    return np.repeat((255 * grey).round().astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize('name', CAMERAS)
def test_a_plane_has_its_depth_at_any_camera_and_k_follows_the_framing(name):
    camera = CAMERAS[name]
    predictor = ApparentSizeNetwork(TRAINING_FOCAL)
    rgb = render_square(camera)
    depth = predictor.predict(rgb, camera.K)
    assert depth.shape == (camera.height, camera.width)
    assert np.isfinite(depth).all()  # padded only: every pixel seen
    np.testing.assert_allclose(depth, DISTANCE, rtol=0.01)

    framing = predictor.framing(camera.width, camera.height, camera.K)
    width, height = framing.size
    assert width % 32 == 0 and height % 32 == 0
    # The aspect ratio is kept (square pixels), the image padded to the next multiples of 32.
    scale = TRAINING_FOCAL[0] / camera.fx
    assert 0 <= width - camera.width * scale < 32 and 0 <= height - camera.height * scale < 32
    # K by hand: scaled with the resize (pixel centres at integers), shifted by the window.
    (rw, rh), (x, y) = framing.resized, framing.window
    sx, sy = rw / camera.width, rh / camera.height
    expected = np.array([[camera.fx * sx, 0, (camera.cx + 0.5) * sx - 0.5 - x],
                         [0, camera.fy * sy, (camera.cy + 0.5) * sy - 0.5 - y], [0, 0, 1]])
    np.testing.assert_allclose(framing.network.K, expected)
    assert framing.network.fx / framing.network.fy == pytest.approx(camera.fx / camera.fy,
                                                                    rel=0.01)
    at_model = predictor.predict(rgb, camera.K, resolution='model')
    assert at_model.shape == (height, width)
    np.testing.assert_allclose(at_model[np.isfinite(at_model)], DISTANCE, rtol=0.01)
    # The square's centre projects where the network camera says.
    network_rgb = framing.network_image(rgb)
    u, v = framing.network.project(np.array([0.0, 0.0, DISTANCE]))
    assert network_rgb[round(v), round(u)].min() == 255


def test_resizing_to_the_input_size_regardless_of_focal_gets_the_depth_wrong():
    """What checkpoints without a recorded training camera still do, and why it changed."""
    camera = CAMERAS['4:3']
    depth = ApparentSizeNetwork(None).predict(render_square(camera), camera.K)
    assert np.isfinite(depth).all()
    assert abs(np.median(depth) / DISTANCE - 1) > 0.2


# Cameras that exercise every case of the framing: padding only, the pixel bound's crop on both
# axes, a crop on one axis and padding (to the 64-pixel minimum) on the other, enlarging.
FRAMED = {**CAMERAS,
          'wide, cropped': PinholeCamera(1920, 1080, 400.0, 400.0, 955.0, 544.0),
          'panoramic, cropped and padded': PinholeCamera(3000, 60, 300.0, 300.0, 1510.0, 29.0),
          'not square pixels': PinholeCamera(640, 480, 520.0, 480.0, 318.0, 242.0),
          'enlarged': PinholeCamera(200, 150, 60.0, 60.0, 99.0, 74.0)}


def normalised_x(camera: PinholeCamera) -> np.ndarray:
    """(u - cx) / fx per pixel: the same for a point in every camera that sees it."""
    return ((np.arange(camera.width) - camera.cx) / camera.fx)[None].repeat(camera.height, 0)


def normalised_y(camera: PinholeCamera) -> np.ndarray:
    return ((np.arange(camera.height) - camera.cy) / camera.fy)[:, None].repeat(camera.width, 1)


@pytest.mark.parametrize('name', FRAMED)
@pytest.mark.parametrize('focal', [TRAINING_FOCAL, (185.6, 120.0)],
                         ids=['square training pixels', 'anisotropic training resize'])
def test_k_follows_the_pixels_there_and_back(name, focal):
    """A ray's normalised coordinates are the same in every camera: an image of them, framed,
    must read as the network camera's own, and a depth made of them, taken back, as the
    camera's (where interpolation has pixels on both sides, not where edges are repeated)."""
    camera = FRAMED[name]
    framing = plan(camera, TRAINING_SIZE, focal)
    network = framing.network
    width, height = framing.size
    assert width % 32 == 0 and height % 32 == 0 and min(width, height) >= 64
    assert width * height <= 4 * TRAINING_SIZE[0] * TRAINING_SIZE[1]
    np.testing.assert_allclose([network.fx, network.fy], focal, rtol=0.01)
    rows, cols = framing.seen()
    # Where each camera pixel's centre lands in the network input.
    sx, sy = (r / c for r, c in zip(framing.resized, (camera.width, camera.height)))
    u = (np.arange(camera.width) + 0.5) * sx - 0.5 - framing.window[0]
    v = (np.arange(camera.height) + 0.5) * sy - 0.5 - framing.window[1]
    # OpenCV's warps place samples to 1/32 of a source pixel, and INTER_AREA's weights are
    # rounded alike: 0.06 pixel of the coarser image, here in normalised coordinates.
    tolerance = 0.06 * max(1, sx, sy) / min(network.fx, network.fy)
    inner = (slice(rows.start + 1, rows.stop - 1), slice(cols.start + 1, cols.stop - 1))
    interior = (((v >= rows.start) & (v <= rows.stop - 1))[:, None]
                & ((u >= cols.start) & (u <= cols.stop - 1)))
    for ray in (normalised_x, normalised_y):
        forward = framing.network_image(ray(camera).astype(np.float32))
        np.testing.assert_allclose(forward[inner], ray(network)[inner], atol=tolerance)
        # (10 m further: a depth, positive and with no edges, that goes back bilinearly)
        back = framing.camera_depth(10 + ray(network).astype(np.float32))
        np.testing.assert_allclose(back[interior], 10 + ray(camera)[interior], atol=tolerance)
    # Exactly the camera pixels whose centres fall outside the network's window have no depth.
    expected = ((v >= -0.5) & (v <= height - 0.5))[:, None] & ((u >= -0.5) & (u <= width - 0.5))
    np.testing.assert_array_equal(np.isfinite(back), expected)
    at_model = framing.network_depth(np.ones((height, width), np.float32))
    assert np.isfinite(at_model[rows, cols]).all()
    assert np.isnan(at_model).sum() == width * height - at_model[rows, cols].size


def test_the_training_camera_is_shown_to_the_network_as_in_training():
    """Training resizes each axis on its own (a 1280x720 source into 448x256): its camera must
    come back to exactly that input, however anisotropic."""
    source = PinholeCamera(1280, 720, 900.0, 900.0, 640.5, 359.0)
    trained = source.scaled(448, 256)
    framing = plan(source, (448, 256), (trained.fx, trained.fy))
    assert framing.size == framing.resized == (448, 256) and framing.window == (0, 0)
    np.testing.assert_allclose(framing.network.K, trained.K)


def test_a_camera_far_from_the_training_one_is_named_once_with_both_fields_of_view():
    wide = PinholeCamera(1920, 1080, 400.0, 400.0, 959.5, 539.5)
    predictor = ApparentSizeNetwork(TRAINING_FOCAL)
    for _ in range(3):
        predictor.predict(np.zeros((1080, 1920, 3), np.uint8), wide.K)
    framing = predictor.framing(1920, 1080, wide.K)
    # Bounded: at most MAX_PIXELS_RATIO x the training input's pixels.
    assert framing.size[0] * framing.size[1] <= 4 * TRAINING_SIZE[0] * TRAINING_SIZE[1]
    assert len(predictor.warnings) == 1
    warning = predictor.warnings[0]
    assert warning.startswith('camera 1920x1080 (135x107 deg field of view) is far from the '
                              'training camera (82x29 deg at 320x96)')
    assert 'fits the network input' in warning
    near = plan(PinholeCamera(640, 192, 2 * TRAINING_FOCAL[0], 2 * TRAINING_FOCAL[1], 321.0,
                              97.0), TRAINING_SIZE, TRAINING_FOCAL)
    assert far_from_training(near, TRAINING_SIZE, TRAINING_FOCAL) is None
    taller = plan(CAMERAS['4:3'], TRAINING_SIZE, TRAINING_FOCAL)  # 2x the training view's height
    assert 'against 320x96 in training' in far_from_training(taller, TRAINING_SIZE,
                                                             TRAINING_FOCAL)
    # ... familiar to a model that also trained on windows that tall (data.window_heights)
    assert far_from_training(taller, TRAINING_SIZE, TRAINING_FOCAL, (96, 192)) is None
    panorama = plan(PinholeCamera(640, 96, *TRAINING_FOCAL, 319.5, 47.5), TRAINING_SIZE,
                    TRAINING_FOCAL)  # 2x the training view's width
    assert 'sees it as 640x96 against 320x96 to 320x192 in training' in far_from_training(
        panorama, TRAINING_SIZE, TRAINING_FOCAL, (96, 192))


@pytest.mark.parametrize('resolution', ['input', 'model'])
def test_the_node_pipeline_frames_a_4_3_camera_for_a_10_3_model(resolution):
    from hybrid_depth_core.messages import builders
    from hybrid_depth_core.runtime.node_config import NodeConfig
    from hybrid_depth_core.runtime.pipeline import DepthPipeline
    camera = CAMERAS['4:3']
    predictor = ApparentSizeNetwork(TRAINING_FOCAL)
    header = builders.header(1_000_000_000, 'camera_optical_frame')
    image = builders.rgb_image(render_square(camera), header)
    info = builders.camera_info(camera.K, camera.width, camera.height, header)
    out = DepthPipeline(predictor, NodeConfig(output_resolution=resolution)).process(image, info)
    framing = predictor.framing(camera.width, camera.height, camera.K)
    expected = camera if resolution == 'input' else framing.network
    width, height = expected.width, expected.height
    assert (out.depth['width'], out.depth['height']) == (width, height)
    assert (out.camera_info['width'], out.camera_info['height']) == (width, height)
    np.testing.assert_allclose(np.reshape(out.camera_info['k'], (3, 3)), expected.K)
    np.testing.assert_allclose(np.reshape(out.camera_info['p'], (3, 4))[:, :3], expected.K)
    depth = np.frombuffer(out.depth['data'], '<f4').reshape(height, width)
    np.testing.assert_allclose(depth[np.isfinite(depth)], DISTANCE, rtol=0.01)
    # Padded rows have no depth at the network's resolution; the camera's pixels all have.
    assert np.isnan(depth).any() == (resolution == 'model')
    cloud = np.frombuffer(out.points['data'], np.float32).reshape(height, width, 8)
    centre = cloud[round(expected.cy), round(expected.cx), :3]
    np.testing.assert_allclose(centre, [0, 0, DISTANCE], atol=0.02)  # on the optical axis
