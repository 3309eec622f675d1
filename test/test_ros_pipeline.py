"""The node's frame pipeline, parameters, model loading and threading plumbing, without ROS:
outputs consistent with the input, multi-frame matching against a keyframe of the same
sequence, camera_info handling, bad input that leaves the pipeline serving the next good
frame."""
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from hybrid_depth_core.tracks.image_motion import is_static
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages import builders
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_core.networks import DepthModel, DepthModelConfig, PoseNet
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.runtime.node_config import PARAMETERS, RANDOM_INPUT_SIZE, NodeConfig
from hybrid_depth_core.runtime.loader import load_predictor
from hybrid_depth_core.runtime.pipeline import DepthPipeline, NoCameraInfo
from hybrid_depth_core.runtime.frame_handoff import LatestSlot, Stats, Throttle
from moving_images import shifted_frames

WIDTH, HEIGHT, FRAME_ID = 96, 48, 'camera_optical_frame'
# A random network's depth is about 10 m (DepthModelConfig.initial_depth): keep all of it valid.
CONFIG = NodeConfig(min_depth=0.01, max_depth=80.0)


@pytest.fixture(scope='module')
def drive():
    drive = SyntheticDrive(DriveConfig(width=WIDTH, height=HEIGHT, frames=3, seed=5))
    return drive, [drive.render(i) for i in range(3)]


@pytest.fixture(scope='module')
def networks():
    """Random single- and multi-frame networks at a 64x64 input, built once (building is the
    slow part; predictors are stateless when used through the pipeline)."""
    torch.manual_seed(0)
    return {False: (DepthModel(DepthModelConfig(arch='hybrid')), None),
            True: (DepthModel(DepthModelConfig(arch='hybrid', multi_frame=True)), PoseNet())}


@pytest.fixture
def small_predictor(networks):
    def build(multi_frame=False, depth_scale=1.0):
        model, pose = networks[multi_frame]
        return DepthPredictor(model, pose, (64, 64), torch.device('cpu'),
                              depth_scale=depth_scale)
    return build


def messages(drive, frame, stamp_ns=None, frame_id=FRAME_ID):
    header = builders.header(frame.stamp_ns if stamp_ns is None else stamp_ns, frame_id)
    return (builders.rgb_image(frame.rgb, header),
            builders.camera_info(drive.camera.K, WIDTH, HEIGHT, header))


def test_outputs_carry_the_input_header_size_and_intrinsics(drive, small_predictor):
    drive, frames = drive
    image, info = messages(drive, frames[0])
    out = DepthPipeline(small_predictor(), NodeConfig(**{**CONFIG.__dict__, 'cloud_stride': 2})
                        ).process(image, info)
    for fields in (out.depth, out.camera_info, out.colorized, out.points):
        assert fields['header'] is image.header
    assert (out.depth['width'], out.depth['height']) == (WIDTH, HEIGHT)
    assert (out.colorized['width'], out.colorized['height']) == (WIDTH, HEIGHT)
    assert (out.points['width'], out.points['height']) == (WIDTH // 2, HEIGHT // 2)
    np.testing.assert_allclose(np.reshape(out.camera_info['k'], (3, 3)), drive.camera.K)
    depth = np.frombuffer(out.depth['data'], '<f4').reshape(HEIGHT, WIDTH)
    assert np.isfinite(depth).all() and (depth > 0).all()
    z = np.frombuffer(out.points['data'], np.float32).reshape(HEIGHT // 2, WIDTH // 2, 8)[..., 2]
    np.testing.assert_array_equal(z, depth[::2, ::2])  # the cloud is the published depth


def test_model_resolution_output_scales_camera_info(drive, small_predictor):
    drive, frames = drive
    config = NodeConfig(**{**CONFIG.__dict__, 'output_resolution': 'model'})
    out = DepthPipeline(small_predictor(), config).process(*messages(drive, frames[0]))
    assert (out.depth['width'], out.depth['height']) == (64, 64)
    # The image was resized to the network's 64x64: K moves with the pixels (centres at
    # integers, so c' = (c + 0.5) s - 0.5), written out here rather than by the code under test.
    fx, fy, cx, cy = (drive.camera.K[i, j] for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    sx, sy = 64 / WIDTH, 64 / HEIGHT
    expected = [fx * sx, 0, (cx + 0.5) * sx - 0.5, 0, 0, fy * sy, (cy + 0.5) * sy - 0.5, 0,
                0, 0, 1, 0]
    np.testing.assert_allclose(out.camera_info['p'], expected, rtol=1e-12)
    np.testing.assert_allclose(out.camera_info['k'], np.reshape(expected, (3, 4))[:, :3].ravel())
    assert (out.camera_info['width'], out.camera_info['height']) == (64, 64)


def test_multi_frame_matches_a_keyframe_only_within_one_sequence(drive, small_predictor):
    drive, _ = drive
    pipeline = DepthPipeline(small_predictor(multi_frame=True), CONFIG)
    # Moved 1.5 x MATCHING_MOTION, then 1.5 again, then a repeat of the last (static).
    frames = [SimpleNamespace(rgb=rgb, stamp_ns=None)
              for rgb in shifted_frames([0, 1.5, 3, 3], WIDTH, HEIGHT)]
    t0 = 10**9

    def age(frame, stamp_ns, frame_id=FRAME_ID):
        out = pipeline.process(*messages(drive, frame, stamp_ns, frame_id))
        assert out.used_previous == (out.lookup_age is not None)
        return out.lookup_age
    assert age(frames[0], t0) is None                     # first frame
    assert age(frames[1], t0 + 10**8) == 1                # the next one, moved
    assert age(frames[2], t0 + 2 * 10**8) == 1
    assert age(frames[3], t0 + 3 * 10**8) == 2            # static: the frame before that
    assert age(frames[1], t0 + 10**8) is None             # stamps went back (a looping bag)
    assert age(frames[2], t0 + 2 * 10**8) == 1            # ... a new sequence from there
    assert age(frames[3], t0 + 4 * 10**9) is None         # a gap of seconds
    assert age(frames[2], t0 + 41 * 10**8, 'other_camera') is None
    still = DepthPipeline(small_predictor(multi_frame=True), CONFIG)
    assert [still.process(*messages(drive, frames[0], t0 + i * 10**8)).lookup_age
            for i in range(3)] == [None] * 3              # a camera static from the start
    single = DepthPipeline(small_predictor(multi_frame=True),
                           NodeConfig(**{**CONFIG.__dict__, 'single_frame': True}))
    for index, frame in enumerate(frames[:3]):
        assert single.process(*messages(drive, frame, t0 + index * 10**8)).lookup_age is None
    assert single.predictor.last_lookup_age is None


def test_is_static_tells_sensor_noise_from_motion(drive):
    _, frames = drive
    rng = np.random.default_rng(1)
    noisy = np.clip(frames[0].rgb + rng.normal(0, 2, frames[0].rgb.shape), 0, 255)
    assert is_static(frames[0].rgb, noisy.astype(np.uint8))
    assert not is_static(frames[0].rgb, frames[1].rgb)


def test_without_camera_info_it_waits_or_uses_the_fallback_field_of_view(drive, small_predictor):
    drive, frames = drive
    image, info = messages(drive, frames[0])
    with pytest.raises(NoCameraInfo, match='no camera_info received yet'):
        DepthPipeline(small_predictor(), CONFIG).process(image, None)
    fallback = DepthPipeline(small_predictor(),
                             NodeConfig(**{**CONFIG.__dict__, 'fallback_fov': 90.0}))
    for camera_info in (None, SimpleNamespace(k=np.zeros(9))):  # none, or uncalibrated
        k = fallback.process(image, camera_info).camera_info['k']
        assert k[0] == pytest.approx(WIDTH / 2) and k[2] == (WIDTH - 1) / 2


def test_bad_input_raises_and_the_next_good_frame_is_served(drive, small_predictor):
    drive, frames = drive
    pipeline = DepthPipeline(small_predictor(), CONFIG)
    image, info = messages(drive, frames[0])
    bad_images = [SimpleNamespace(**{**image.__dict__, 'encoding': '32FC1'}),
                  SimpleNamespace(**{**image.__dict__, 'data': image.data[:-1]}),
                  SimpleNamespace(**{**image.__dict__, 'width': 0, 'height': 0})]
    for bad in bad_images:
        with pytest.raises(BadMessage):
            pipeline.process(bad, info)
    for bad in (messages(drive, frames[0])[1] for _ in range(3)):
        bad.k = np.full(9, np.nan)
        with pytest.raises(BadMessage, match='NaN'):
            pipeline.process(image, bad)
    assert pipeline.process(image, info).depth['width'] == WIDTH


def test_compressed_transport(drive, small_predictor):
    drive, frames = drive
    image, info = messages(drive, frames[0])
    jpeg = builders.jpeg_image(frames[0].rgb, image.header)
    config = NodeConfig(**{**CONFIG.__dict__, 'image_transport': 'compressed'})
    out = DepthPipeline(small_predictor(), config).process(jpeg, info)
    assert (out.depth['width'], out.depth['height']) == (WIDTH, HEIGHT)


def test_depth_scale_and_range_mask_the_depth_and_the_cloud(drive, small_predictor):
    drive, frames = drive
    config = NodeConfig(**{**CONFIG.__dict__, 'colorized': False, 'publish_points': True})
    near = DepthPipeline(small_predictor(), config).process(*messages(drive, frames[0]))
    far = DepthPipeline(small_predictor(depth_scale=1000.0), config).process(
        *messages(drive, frames[0]))
    assert near.colorized is None
    assert np.isfinite(np.frombuffer(near.depth['data'], '<f4')).all()
    # x 1000 puts every pixel beyond max_depth: all NaN, in the depth and in the cloud.
    assert np.isnan(np.frombuffer(far.depth['data'], '<f4')).all()
    assert np.isnan(np.frombuffer(far.points['data'], np.float32).reshape(-1, 8)[:, :3]).all()


def test_no_point_between_the_two_sides_of_a_depth_edge(drive, networks):
    """A step edge, 2 m then 8 m, as a network gives it (blurred over a few of its pixels):
    with the edge filter, the cloud (at the camera's resolution, 1.5x the network's) has no
    point between the two depths; without it, the network's own ramp stays, but going back to
    the camera's resolution adds no depth it did not give (nearest neighbour at edges)."""
    drive, frames = drive
    image, info = messages(drive, frames[0])
    ramp = np.where(np.arange(64) < 32, 2.0, 8.0) * np.ones((64, 1))
    ramp = cv2.GaussianBlur(ramp, (0, 0), 1.5).astype(np.float32)
    given = set(np.round(ramp.ravel(), 4))
    for edge_filter in (0.1, 0.0):
        predictor = DepthPredictor(networks[False][0], None, (64, 64), torch.device('cpu'),
                                   edge_filter=edge_filter)
        predictor.step = lambda *args, **kwargs: (torch.from_numpy(ramp)[None, None], None)
        out = DepthPipeline(predictor, CONFIG).process(image, info)
        points = np.frombuffer(out.points['data'], np.float32).reshape(HEIGHT, WIDTH, 8)
        z = points[..., 2][np.isfinite(points[..., 2])]
        between = (z > 2.0 * 1.05) & (z < 8.0 / 1.05)
        if edge_filter:
            assert not between.any() and z.size > 0.8 * WIDTH * HEIGHT
        else:
            assert between.any()  # the network's ramp
            assert set(np.round(z[between], 4)) <= given  # and nothing bilinear made of it


def test_load_predictor_random_init_and_start_up_errors():
    with pytest.raises(UserError, match='parameter weights is empty.*random_weights:=true'):
        load_predictor(NodeConfig())  # phantom obstacles only when asked for
    predictor = load_predictor(NodeConfig(random_weights=True))
    assert (predictor.width, predictor.height) == RANDOM_INPUT_SIZE
    assert not predictor.multi_frame
    with pytest.raises(UserError, match='fp16 autocast needs a CUDA device'):
        load_predictor(NodeConfig(device='cpu', precision='fp16', random_weights=True))
    with pytest.raises(UserError, match='does not exist'):
        load_predictor(NodeConfig(weights='/nonexistent/last.pt'))


def test_parameter_table_and_config_agree():
    assert [(p.name, p.default) for p in PARAMETERS] == [
        (name, value) for name, value in NodeConfig().__dict__.items()]
    for param in PARAMETERS:
        assert type(getattr(NodeConfig(), param.name)) is type(param.default)
        assert param.description and (param.minimum is None) == (param.maximum is None)


@pytest.mark.parametrize('values, problem', [
    ({'precision': 'fp8'}, 'precision must be one of fp32, bf16, fp16'),
    ({'device': 'tpu'}, 'device must be auto, cpu, cuda or cuda:N'),
    ({'device': 'cudafoo'}, 'device must be auto, cpu, cuda or cuda:N'),
    ({'min_depth': 5.0, 'max_depth': 2.0}, 'min_depth .* must be less than max_depth'),
    ({'fallback_fov': 0.5}, 'fallback_fov must be 0'),
    ({'cloud_stride': 0}, r'cloud_stride must be in \[1, 64\]'),
])
def test_bad_parameters_name_the_parameter(values, problem):
    with pytest.raises(UserError, match=problem):
        NodeConfig.from_values({**NodeConfig().__dict__, **values})


def test_latest_slot_keeps_only_the_newest_and_counts_drops():
    slot = LatestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take(timeout=0) == 3 and slot.take(timeout=0) is None
    taken = []
    consumer = threading.Thread(target=lambda: taken.append(slot.take(timeout=5)))
    consumer.start()
    slot.put('wakes the consumer')
    consumer.join(timeout=5)
    assert taken == ['wakes the consumer']
    slot.close()
    assert slot.take() is None  # closed: returns at once instead of waiting forever


def test_stats_report_rate_latency_what_was_received_and_skipped_and_reset():
    stats = Stats()
    start = time.monotonic()
    for _ in range(4):
        stats.received()
    for latency in (0.05, 0.15):
        stats.served(latency)
    stats.skipped()
    stats.bad()
    line = stats.report(now=start + 2.0)
    assert line.startswith('1.0 Hz') or line.startswith('0.9 Hz')
    assert 'latency 100 ms (max 150)' in line
    assert 'received 4, skipped 1 (a newer image came first; total 1)' in line
    assert 'bad input 1, failed 0' in line
    assert stats.report() is None  # nothing since the last report
    stats.received()
    assert 'received 1, skipped 0' in stats.report()
    assert stats.totals == {'received': 5, 'skipped': 1, 'bad': 1, 'failed': 0, 'served': 2}


def test_throttle_is_per_message():
    throttle = Throttle(5.0)
    assert throttle.ready('a', now=0.0) and throttle.ready('b', now=0.1)
    assert not throttle.ready('a', now=4.0) and throttle.ready('a', now=5.1)
