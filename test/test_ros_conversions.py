"""Message conversions of the depth node as pure functions, without ROS: every input encoding
to RGB, depth to Image / colour-mapped Image / PointCloud2 bytes (decoded here independently
with numpy), and camera_info validation, rectification and scaling."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from hybrid_depth_core.messages import builders
from hybrid_depth_core.messages import outputs
from hybrid_depth_core.camera import PinholeCamera
from hybrid_depth_core.messages.camera_info import camera_from_info, info_fields
from hybrid_depth_core.messages.images import BadMessage, compressed_to_rgb, image_to_rgb

HEADER = builders.header(1_500_000_000, 'cam_optical')
RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def image(data, encoding, width, height, step, bigendian=False):
    return SimpleNamespace(header=HEADER, height=height, width=width, encoding=encoding,
                           is_bigendian=int(bigendian), step=step,
                           data=np.asarray(data, dtype=np.uint8).reshape(-1))


def packed(pixels: np.ndarray, encoding: str, bigendian=False):
    """Message holding `pixels` (H, W[, C]) uint8 or uint16, rows unpadded."""
    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype('>u2' if bigendian else '<u2')
    data = np.ascontiguousarray(pixels).view(np.uint8).reshape(height, -1)
    return image(data, encoding, width, height, data.shape[1], bigendian)


def test_byte_order_encodings_decode_exactly():
    rgba = np.dstack([RGB, RNG.integers(0, 256, (6, 8, 1), dtype=np.uint8)])
    np.testing.assert_array_equal(image_to_rgb(packed(RGB, 'rgb8')), RGB)
    np.testing.assert_array_equal(image_to_rgb(packed(RGB[..., ::-1], 'bgr8')), RGB)
    np.testing.assert_array_equal(image_to_rgb(packed(RGB[..., ::-1], '8UC3')), RGB)
    np.testing.assert_array_equal(image_to_rgb(packed(rgba, 'rgba8')), RGB)
    np.testing.assert_array_equal(image_to_rgb(packed(rgba[..., [2, 1, 0, 3]], 'bgra8')), RGB)
    gray = RGB[..., 0]
    for encoding in ('mono8', '8UC1'):
        np.testing.assert_array_equal(image_to_rgb(packed(gray, encoding)),
                                      np.repeat(gray[..., None], 3, axis=2))
    # A rosbags message, as bag replay or a recording gives it: same attributes, same result.
    np.testing.assert_array_equal(image_to_rgb(builders.rgb_image(RGB, HEADER)), RGB)


@pytest.mark.parametrize('bigendian', [False, True])
def test_16_bit_encodings_keep_the_high_byte_in_either_byte_order(bigendian):
    low = RNG.integers(0, 256, RGB.shape, dtype=np.uint16)
    wide = RGB.astype(np.uint16) * 256 + low
    np.testing.assert_array_equal(image_to_rgb(packed(wide, 'rgb16', bigendian)), RGB)
    np.testing.assert_array_equal(image_to_rgb(packed(wide[..., ::-1], 'bgr16', bigendian)), RGB)
    mono = image_to_rgb(packed(wide[..., 1], 'mono16', bigendian))
    np.testing.assert_array_equal(mono, np.repeat(RGB[..., 1:2], 3, axis=2))


def test_padded_rows_are_cropped_by_step():
    padding = RNG.integers(0, 256, (6, 7), dtype=np.uint8)  # garbage that must not leak in
    rows = np.hstack([RGB.reshape(6, -1), padding])
    np.testing.assert_array_equal(image_to_rgb(image(rows, 'rgb8', 8, 6, 8 * 3 + 7)), RGB)


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer_patterns_demosaic_to_the_colour_they_sampled(pattern):
    colour = np.array([200, 90, 30], dtype=np.uint8)  # distinct R, G, B: a wrong pattern shows
    channel = {'r': 0, 'g': 1, 'b': 2}
    mosaic = np.zeros((8, 10), np.uint8)
    for index, letter in enumerate(pattern):  # 2x2 cell in row-major order
        mosaic[index // 2::2, index % 2::2] = colour[channel[letter]]
    rgb = image_to_rgb(packed(mosaic, f'bayer_{pattern}8'))
    np.testing.assert_allclose(rgb[2:-2, 2:-2].reshape(-1, 3), np.tile(colour, (24, 1)), atol=1)
    rgb16 = image_to_rgb(packed(mosaic.astype(np.uint16) * 256, f'bayer_{pattern}16'))
    np.testing.assert_allclose(rgb16[2:-2, 2:-2].reshape(-1, 3), np.tile(colour, (24, 1)),
                               atol=1)


def yuv_to_rgb(y, u, v):
    """BT.601 limited range (what UVC cameras send), written out independently of OpenCV."""
    c, d, e = y - 16.0, u - 128.0, v - 128.0
    rgb = [1.164 * c + 1.596 * e, 1.164 * c - 0.391 * d - 0.813 * e, 1.164 * c + 2.018 * d]
    return np.clip(np.round(rgb), 0, 255)


@pytest.mark.parametrize('encoding, order', [('yuv422', 'UYVY'), ('uyvy', 'UYVY'),
                                             ('yuv422_yuy2', 'YUYV'), ('yuyv', 'YUYV')])
def test_yuv422_byte_orders(encoding, order):
    y = RNG.integers(16, 236, (4, 6))
    u, v = RNG.integers(16, 241, (4, 3)), RNG.integers(16, 241, (4, 3))
    quad = {'Y': None, 'U': u, 'V': v}
    columns = []
    for pair in range(3):  # every 4 bytes: two pixels sharing one U and one V
        ys = iter((y[:, 2 * pair], y[:, 2 * pair + 1]))
        columns += [next(ys) if letter == 'Y' else quad[letter][:, pair] for letter in order]
    data = np.stack(columns, axis=1).astype(np.uint8)
    rgb = image_to_rgb(image(data, encoding, 6, 4, 12))
    expected = np.stack([[yuv_to_rgb(y[r, c], u[r, c // 2], v[r, c // 2]) for c in range(6)]
                         for r in range(4)])
    np.testing.assert_allclose(rgb, expected, atol=1)


def test_compressed_jpeg_and_png_decode_to_rgb():
    smooth = cv2.resize(RGB, (64, 48), interpolation=cv2.INTER_CUBIC)
    jpeg = compressed_to_rgb(builders.jpeg_image(smooth, HEADER, quality=95))
    assert jpeg.shape == (48, 64, 3) and np.abs(jpeg.astype(int) - smooth).mean() < 3
    png = cv2.imencode('.png', smooth[..., ::-1])[1]
    for fmt in ('bgr8; png compressed bgr8', 'png', ''):
        np.testing.assert_array_equal(
            compressed_to_rgb(SimpleNamespace(format=fmt, data=png.tobytes())), smooth)
    gray16 = smooth[..., 0].astype(np.uint16) * 256 + 255  # 16-bit PNG keeps the high byte
    decoded = compressed_to_rgb(SimpleNamespace(format='mono16; png compressed',
                                                data=cv2.imencode('.png', gray16)[1]))
    np.testing.assert_array_equal(decoded, np.repeat(smooth[..., :1], 3, axis=2))


@pytest.mark.parametrize('message, problem', [
    (image(np.zeros(24), 'rgb9', 4, 2, 12), "unsupported image encoding 'rgb9'"),
    (image(np.zeros(0), 'rgb8', 0, 2, 0), r'zero size \(0x2\)'),
    (image(np.zeros(20), 'rgb8', 4, 2, 10), 'step 10 is smaller than'),
    (image(np.zeros(23), 'rgb8', 4, 2, 12), r'23 bytes but step \* height = 12 \* 2 = 24'),
    (image(np.zeros(12), 'yuv422', 3, 2, 6), 'even width'),
])
def test_malformed_images_name_the_problem(message, problem):
    with pytest.raises(BadMessage, match=problem):
        image_to_rgb(message)


@pytest.mark.parametrize('fmt, data, problem', [
    ('16UC1; compressedDepth png', b'\0' * 20, 'compressed depth image'),
    ('jpeg', b'', 'no data'),
    ('jpeg', b'not a jpeg at all', 'cannot decode'),
])
def test_malformed_compressed_images_name_the_problem(fmt, data, problem):
    with pytest.raises(BadMessage, match=problem):
        compressed_to_rgb(SimpleNamespace(format=fmt, data=data))


def test_depth_image_fields_are_32fc1_metres_with_nan_invalid():
    depth = outputs.mask_depth(np.array([[0.05, 1.0, 80.0], [80.5, np.inf, np.nan]]), 0.1, 80.0)
    fields = outputs.depth_image_fields(depth, HEADER)
    assert fields['header'] is HEADER
    assert (fields['encoding'], fields['is_bigendian'], fields['step']) == ('32FC1', 0, 12)
    decoded = np.frombuffer(fields['data'], '<f4').reshape(fields['height'], fields['width'])
    np.testing.assert_array_equal(decoded, [[np.nan, 1.0, 80.0], [np.nan] * 3])


def test_colorized_depth_uses_a_fixed_scale():
    depth = np.array([[0.5, 2.0, 50.0, np.nan]], np.float32)
    fields = outputs.colorized_fields(depth, HEADER, 0.5, 50.0)
    rgb = np.frombuffer(fields['data'], np.uint8).reshape(1, 4, 3)
    assert (fields['encoding'], fields['step']) == ('rgb8', 12)
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[0, 2, 2] > rgb[0, 2, 0]  # near red, far blue
    assert rgb[0, 3].tolist() == [0, 0, 0]  # no depth: black
    # The colour of 2 m does not depend on what else is in the frame.
    other = outputs.colorized_fields(np.array([[2.0, 3.0]], np.float32), HEADER, 0.5, 50.0)
    np.testing.assert_array_equal(np.frombuffer(other['data'], np.uint8)[:3], rgb[0, 1])


def decode_cloud(fields: dict) -> np.ndarray:
    """Independent PointCloud2 reader: a numpy dtype built from the message's own fields."""
    assert all(f['datatype'] == 7 and f['count'] == 1 for f in fields['fields'])  # FLOAT32
    dtype = np.dtype({'names': [f['name'] for f in fields['fields']],
                      'formats': ['<f4'] * len(fields['fields']),
                      'offsets': [f['offset'] for f in fields['fields']],
                      'itemsize': fields['point_step']})
    assert len(fields['data']) == fields['row_step'] * fields['height']
    return np.frombuffer(fields['data'], dtype).reshape(fields['height'], fields['width'])


@pytest.mark.parametrize('stride', [1, 3])
def test_point_cloud_equals_the_analytic_back_projection(stride):
    height, width = 7, 10
    depth = RNG.uniform(1, 30, (height, width)).astype(np.float32)
    depth[2, 3] = depth[0, 0] = np.nan
    rgb = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
    K = np.array([[8.5, 0, 4.2], [0, 9.5, 3.1], [0, 0, 1]])
    fields = outputs.point_cloud_fields(depth, K, rgb, HEADER, stride)
    assert fields['header'] is HEADER and fields['is_dense'] is False
    assert (fields['point_step'], fields['is_bigendian']) == (32, False)
    assert [(f['name'], f['offset']) for f in fields['fields']] == [
        ('x', 0), ('y', 4), ('z', 8), ('rgb', 16)]
    cloud = decode_cloud(fields)
    v, u = np.mgrid[0:height:stride, 0:width:stride].astype(np.float64)
    z = depth[::stride, ::stride].astype(np.float64)
    assert cloud.shape == z.shape == (-(-height // stride), -(-width // stride))
    np.testing.assert_allclose(cloud['x'], (u - K[0, 2]) * z / K[0, 0], rtol=1e-6)
    np.testing.assert_allclose(cloud['y'], (v - K[1, 2]) * z / K[1, 1], rtol=1e-6)
    np.testing.assert_allclose(cloud['z'], z, rtol=1e-7)
    packed_rgb = cloud['rgb'].view('<u4')
    colour = np.stack([packed_rgb >> 16 & 255, packed_rgb >> 8 & 255, packed_rgb & 255], -1)
    np.testing.assert_array_equal(colour, rgb[::stride, ::stride])


def info(K, width, height, **changes):
    message = builders.camera_info(np.asarray(K, dtype=np.float64), width, height, HEADER)
    for name, value in changes.items():
        setattr(message, name, value)
    return message


K = np.array([[100.0, 0, 63.2], [0, 110.0, 31.7], [0, 0, 1]])


def test_an_undistorted_camera_info_passes_through():
    camera, rectifier = camera_from_info(info(K, 128, 64), 128, 64)
    assert rectifier is None and (camera.width, camera.height) == (128, 64)
    np.testing.assert_array_equal(camera.K, K)
    fields = info_fields(camera, HEADER)
    assert fields['header'] is HEADER and fields['d'] == [0.0] * 5
    assert fields['k'] == K.reshape(-1).tolist()
    assert fields['p'] == np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()


def test_a_skewed_camera_keeps_its_skew_through_info_and_scaling():
    skewed = K + [[0, 0.7, 0], [0, 0, 0], [0, 0, 0]]
    camera, _ = camera_from_info(info(skewed, 128, 64, p=np.hstack([skewed, np.zeros((3, 1))])),
                                 128, 64)
    assert info_fields(camera, HEADER)['k'] == skewed.reshape(-1).tolist()
    assert camera.scaled(64, 32).K[0, 1] == pytest.approx(0.35)  # u' = (u + 0.5) / 2 - 0.5
    point = np.array([1.3, -0.4, 5.0])
    u, v = (skewed @ point)[:2] / point[2]
    assert tuple(camera.project(point)) == pytest.approx((u, v))
    assert camera.pixel_rays()[int(round(v)), int(round(u))] == pytest.approx(
        np.linalg.solve(skewed, [round(u), round(v), 1.0]))


def test_scaling_moves_k_and_p_like_the_resize_moves_pixels():
    P = np.hstack([K, [[-12.0], [3.0], [0.0]]])  # a right stereo camera: Tx = -fx B
    small = PinholeCamera.from_matrix(P, 128, 64).scaled(64, 48)
    sx, sy = 64 / 128, 48 / 64
    k = info_fields(small, HEADER)['k']
    p = info_fields(small, HEADER)['p']
    assert (k[0], k[4]) == (100 * sx, 110 * sy) and (p[0], p[5]) == (100 * sx, 110 * sy)
    # Pixel centres at integers: pixel u of the full image lies at (u + 0.5) s - 0.5.
    assert k[2] == p[2] == pytest.approx((63.2 + 0.5) * sx - 0.5)
    assert k[5] == p[6] == pytest.approx((31.7 + 0.5) * sy - 0.5)
    assert (p[3], p[7]) == (-12.0 * sx, 3.0 * sy)
    point = np.array([1.3, -0.4, 5.0])
    u, v = (K @ point)[:2] / point[2]
    u_small, v_small = (small.K @ point)[:2] / point[2]
    assert (u_small, v_small) == pytest.approx(((u + 0.5) * sx - 0.5, (v + 0.5) * sy - 0.5))


def test_fallback_camera_from_a_field_of_view():
    camera = PinholeCamera.from_fov(200, 100, 90.0)
    assert camera.K[0, 0] == pytest.approx(100.0) and camera.K[1, 1] == pytest.approx(100.0)
    assert (camera.K[0, 2], camera.K[1, 2]) == (99.5, 49.5)


def test_distorted_input_is_rectified_to_p():
    D = np.array([-0.3, 0.1, 0.001, -0.002, 0.0])
    P = np.hstack([K * [[0.9], [0.9], [1]], np.zeros((3, 1))])
    message = info(K, 128, 64, d=D, p=P.reshape(-1))
    raw = np.zeros((64, 128, 3), np.uint8)
    raw_dot = (20.0, 12.0)  # a bright dot near the corner, where distortion is large
    cv2.circle(raw, (20, 12), 2, (255, 255, 255), -1)
    camera, rectifier = camera_from_info(message, 128, 64)
    np.testing.assert_array_equal(camera.K, P[:, :3])  # the depth is an image of P
    rectified = rectifier(raw)[..., 0].astype(np.float64)
    v, u = np.mgrid[0:64, 0:128]
    found = ((u * rectified).sum() / rectified.sum(), (v * rectified).sum() / rectified.sum())
    expected = cv2.undistortPoints(np.array([[raw_dot]]), K, D, P=P[:, :3])[0, 0]
    assert found == pytest.approx(tuple(expected), abs=0.3)
    # Already rectified input (image_rect): no remapping, the intrinsics are still P's.
    camera, rectifier = camera_from_info(message, 128, 64, rectify=False)
    assert rectifier is None
    np.testing.assert_array_equal(camera.K, P[:, :3])


def test_unset_r_and_p_mean_identity_and_k():
    camera, rectifier = camera_from_info(info(K, 128, 64, r=np.zeros(9), p=np.zeros(12)),
                                         128, 64)
    assert rectifier is None
    np.testing.assert_array_equal(camera.K, K)


@pytest.mark.parametrize('changes, size, problem', [
    ({'k': np.zeros(9)}, (128, 64), 'k is all zero: the camera is uncalibrated'),
    ({'k': np.r_[np.nan, K.reshape(-1)[1:]]}, (128, 64), 'NaN or infinite'),
    ({}, (100, 64), 'camera_info describes a 128x64 image but the image is 100x64'),
    ({'k': -K.reshape(-1)}, (128, 64), 'focal lengths must be positive'),
    ({'k': np.ones(4)}, (128, 64), 'needs 9 k'),
    ({'d': np.ones(3), 'distortion_model': 'fancy'}, (128, 64),
     "unsupported distortion model 'fancy'"),
    ({'d': np.full(3, 0.1), 'distortion_model': 'plumb_bob'}, (128, 64),
     'plumb_bob distortion needs 5 coefficients, got 3'),
    ({'d': np.full(5, 0.1), 'distortion_model': 'equidistant'}, (128, 64),
     'equidistant distortion needs 4 coefficients, got 5'),
])
def test_bad_camera_info_names_the_problem(changes, size, problem):
    with pytest.raises(BadMessage, match=problem):
        camera_from_info(info(K, 128, 64, **changes), *size)


@pytest.mark.parametrize('binning, roi, size, principal', [
    ((2, 2), (0, 0, 0, 0), (64, 32), ((63.2 - 0) / 2, (31.7 - 0) / 2)),
    ((1, 1), (20, 10, 80, 40), (80, 40), (63.2 - 20, 31.7 - 10)),
    ((2, 1), (20, 10, 80, 40), (40, 40), ((63.2 - 20) / 2, 31.7 - 10)),
])
def test_binning_and_region_of_interest_as_rep_104_and_image_geometry(binning, roi, size,
                                                                      principal):
    """A 128x64 sensor read out through a region of interest and binned: the image is the ROI's
    size over the binning, and its camera is the sensor's with the principal point moved by the
    offset, then focal lengths and principal point divided by the binning (image_geometry's
    PinholeCameraModel). A distorted one is rectified with the same reduced camera."""
    message = info(K, 128, 64, binning_x=binning[0], binning_y=binning[1])
    message.roi.x_offset, message.roi.y_offset, message.roi.width, message.roi.height = roi
    camera, rectifier = camera_from_info(message, *size)
    assert rectifier is None and (camera.width, camera.height) == size
    np.testing.assert_allclose([camera.fx, camera.fy, camera.cx, camera.cy],
                               [100.0 / binning[0], 110.0 / binning[1], *principal])
    how = ', '.join(([f'its {roi[2]}x{roi[3]} region of interest at {roi[0]}, {roi[1]}']
                     if any(roi) else []) + ([f'binned {binning[0]}x{binning[1]}']
                                             if binning != (1, 1) else []))
    with pytest.raises(BadMessage, match=f'describes a {size[0]}x{size[1]} image \\({how}, '
                                         f'of a 128x64 sensor\\) but the image is 128x64'):
        camera_from_info(message, 128, 64)  # the full sensor's size is not this image's
    # Distorted: a point the raw reduced image shows at the reduced raw camera's projection
    # lands, rectified, where the reduced pinhole camera projects it.
    message.d = [-0.2, 0.05, 0.0, 0.0, 0.0]
    camera, rectifier = camera_from_info(message, *size)
    reduced_K = camera.K
    point = np.array([[0.15, 0.08, 1.0]])
    raw, _ = cv2.projectPoints(point, np.zeros(3), np.zeros(3), reduced_K,
                               np.array(message.d))
    u, v = raw.reshape(2)
    ys, xs = np.mgrid[0:size[1], 0:size[0]]
    blob = np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.5 ** 2)).astype(np.float32)
    rectified = rectifier(np.repeat(blob[..., None], 3, axis=2))[..., 0]
    peak = np.unravel_index(np.argmax(rectified), rectified.shape)
    expected = camera.project(point)[0]
    assert abs(peak[1] - expected[0]) <= 1 and abs(peak[0] - expected[1]) <= 1
