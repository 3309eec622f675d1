"""Recordings as robots record them: depth cameras in compressedDepth, the camera chosen among
depth topics, ground truth on the raw pixel grid, depth and colour stamps that differ, grey
cameras, one bag split in time, and the road check for streets without depth. The last tests
read the real recordings in ../shared/data and skip where they are absent."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader

from hybrid_depth_core.datasets.bag_dataset import BagDataset, BagSource
from hybrid_depth_core.recordings.bag_motion import MotionOptions, read_camera_motion
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.synthetic.drive import R_BODY_OPTICAL, RenderedSequence
from hybrid_depth_core.recordings.time_span import TimeSpan
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.evaluation.bag_evaluation import (evaluate_bag, half_frame_period_ns,
                                                         pair_by_stamp)
from hybrid_depth_core.evaluation.road import RoadCheck, flat_road_depth, road_region
from hybrid_depth_core.messages import builders as msgs
from hybrid_depth_core.messages.depth import depth_to_metres, is_depth_message
from hybrid_depth_core.messages.images import BadMessage
from hybrid_depth_core.networks import DepthModel, DepthModelConfig, PoseNet
from hybrid_depth_core.runtime.bag_inference import infer_bag
from hybrid_depth_core.runtime.node_config import NodeConfig
from hybrid_depth_core.runtime.pipeline import DepthPipeline
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.trainer import train
from recorded_bags import compressed_depth, grey_image, millimetre_image, write_bag

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'
WIDTH, HEIGHT, FRAMES = 96, 64, 9
IMAGE, INFO = '/camera/image_raw', '/camera/camera_info'
DEPTH_RAW, DEPTH_PNG = '/camera/depth/image_raw', '/camera/depth/image_raw/compressedDepth'


@pytest.fixture(scope='module')
def drive():
    # (nothing beyond 60 m: millimetres in 16 bits end at 65.5 m)
    drive = SyntheticDrive(DriveConfig(width=WIDTH, height=HEIGHT, frames=FRAMES, seed=11,
                                       max_depth=60.0))
    return drive, [drive.render(i) for i in range(FRAMES)]


@pytest.fixture(scope='module')
def predictor():
    torch.manual_seed(0)
    model = DepthModel(DepthModelConfig(arch='resnet18', multi_frame=True))
    return DepthPredictor(model.eval(), PoseNet().eval(), (64, 64), torch.device('cpu'))


def camera_bag(path, drive, frames, image=msgs.rgb_image, depth_topics=(DEPTH_PNG,),
               depth_offset_ns=0, info=None, depth_of=None):
    """A camera (`image(rgb, header)`), its camera_info and depth topics (16UC1 raw and/or
    compressedDepth PNG) stamped `depth_offset_ns` (per frame: a function) after the images."""
    messages = []
    for frame in frames:
        header = msgs.header(frame.stamp_ns, 'camera')
        messages.append((IMAGE, 'sensor_msgs/msg/Image', image(frame.rgb, header),
                         frame.stamp_ns))
        camera_info = (info(header) if info else msgs.camera_info(
            drive.camera.K, drive.camera.width, drive.camera.height, header))
        messages.append((INFO, 'sensor_msgs/msg/CameraInfo', camera_info, frame.stamp_ns))
        offset = depth_offset_ns(frame.index) if callable(depth_offset_ns) else depth_offset_ns
        stamp = frame.stamp_ns + offset
        depth = frame.depth if depth_of is None else depth_of(frame)
        for topic in depth_topics:
            depth_header = msgs.header(stamp, 'camera')
            message = (compressed_depth(depth, depth_header, depth_max=100.0)
                       if topic == DEPTH_PNG
                       else millimetre_image(depth, depth_header))
            msgtype = ('sensor_msgs/msg/CompressedImage' if topic == DEPTH_PNG
                       else 'sensor_msgs/msg/Image')
            messages.append((topic, msgtype, message, stamp))
    messages.sort(key=lambda m: m[3])
    return write_bag(path, messages)


def oracle(frames, scale=1.0):
    """predict() that returns each frame's true depth (times `scale`), found by its image."""
    def predict(rgb, K, previous=None, turn=None):
        for frame in frames:
            if np.array_equal(frame.rgb, rgb):
                return scale * np.nan_to_num(frame.depth, nan=500.0)
        raise AssertionError('unknown frame')
    return predict


# compressedDepth

def test_compressed_depth_16uc1_round_trip_keeps_every_millimetre():
    rng = np.random.default_rng(0)
    mm = rng.integers(0, 10000, (48, 64)).astype(np.uint16)  # under the plugin's 10 m
    mm[5, 7] = 0
    message = compressed_depth(mm / 1000.0, msgs.header(1, 'camera'))
    assert is_depth_message(message)
    metres = depth_to_metres(message)
    assert np.isnan(metres[5, 7])
    valid = mm > 0
    np.testing.assert_array_equal(np.round(metres[valid] * 1000).astype(np.uint16), mm[valid])
    # the same PNG under other spellings of the format that drivers write
    for format_ in ('16UC1; compressedDepth', 'mono16; compressedDepth png',
                    '16UC1; compresseddepth png'):
        other = type(message)(header=message.header, format=format_, data=message.data)
        np.testing.assert_array_equal(depth_to_metres(other), metres)


def test_compressed_depth_32fc1_decodes_the_quantised_inverse_depth():
    depth = np.linspace(0.5, 9.5, 48 * 64, dtype=np.float32).reshape(48, 64)
    depth[0, 0] = np.nan
    metres = depth_to_metres(compressed_depth(depth, msgs.header(1, 'camera'), '32FC1'))
    assert np.isnan(metres[0, 0])
    # one quantisation step of q = A / d + B is d^2 / A: 0.9 cm at 9.5 m (A = 10100)
    np.testing.assert_allclose(metres[1:], depth[1:], atol=9.5 ** 2 / 10100 + 1e-4)


def test_compressed_depth_that_cannot_be_read_says_why():
    good = compressed_depth(np.ones((4, 4)), msgs.header(1, 'camera'))
    for format_, data, problem in [
            ('16UC1; compressedDepth rvl', good.data, "'rvl' is not supported"),
            ('8UC3; compressedDepth png', good.data, "'8UC3' is not one of 16UC1"),
            ('16UC1; compressedDepth png', good.data[:12], 'no image after'),
            ('16UC1; compressedDepth png', np.concatenate([good.data[:12], [1, 2, 3]]),
             'not a one-channel 16-bit PNG')]:
        message = type(good)(header=good.header, format=format_, data=np.asarray(data, np.uint8))
        with pytest.raises(BadMessage, match=problem):
            depth_to_metres(message)


# the camera among depth topics

def test_a_bag_with_one_camera_and_two_depth_topics_needs_no_image_topic(tmp_path, drive):
    camera, frames = drive
    bag = camera_bag(tmp_path / 'rgbd', camera, frames[:3], depth_topics=(DEPTH_RAW, DEPTH_PNG))
    with Bag(bag) as opened:
        assert opened.image_topic == IMAGE and opened.camera_info_topic == INFO
        assert set(opened.depth_topics()) == {DEPTH_RAW, DEPTH_PNG}
    with pytest.raises(UserError, match='holds depth images, not a camera.*/camera/image_raw'):
        Bag(bag, image_topic=DEPTH_PNG)


def test_compressed_depth_is_ground_truth_in_evaluate(tmp_path, drive):
    camera, frames = drive
    bag = camera_bag(tmp_path / 'rgbd', camera, frames, depth_topics=(DEPTH_RAW, DEPTH_PNG))
    for topic in (DEPTH_RAW, DEPTH_PNG):
        result = evaluate_bag(oracle(frames, 0.5), bag, topic, progress=False)
        assert result['images'] == FRAMES and result['median_scaled']['abs_rel'] < 2e-3
        assert result['unscaled']['abs_rel'] == pytest.approx(0.5, abs=2e-3)
        assert result['pairing']['pairs'] == FRAMES
        # a constant depth is scored beside it: each image's median, and one number unscaled
        constant = result['constant']
        assert 0.05 < constant['median_scaled']['abs_rel'] < constant['unscaled']['abs_rel']
    with pytest.raises(UserError, match='2 depth topics'):
        evaluate_bag(oracle(frames), bag, progress=False)  # which one is the truth?
    with pytest.raises(UserError, match="no depth topic '/camera/image_raw'.*compressedDepth"):
        evaluate_bag(oracle(frames), bag, IMAGE, progress=False)


def test_a_mono16_depth_topic_named_as_ground_truth_is_read_as_millimetres(tmp_path, drive):
    """mono16 is also a camera encoding, so it is never taken for depth by itself; named with
    --gt-depth-topic, it is millimetres as 16UC1 is."""
    camera, frames = drive

    def mono16(depth, header):
        message = millimetre_image(depth, header)
        message.encoding = 'mono16'
        return message
    messages = []
    for frame in frames:
        header = msgs.header(frame.stamp_ns, 'camera')
        messages += [(IMAGE, 'sensor_msgs/msg/Image', msgs.rgb_image(frame.rgb, header),
                      frame.stamp_ns),
                     (INFO, 'sensor_msgs/msg/CameraInfo',
                      msgs.camera_info(camera.camera.K, WIDTH, HEIGHT, header), frame.stamp_ns),
                     ('/depth', 'sensor_msgs/msg/Image', mono16(frame.depth, header),
                      frame.stamp_ns)]
    bag = write_bag(tmp_path / 'mono16', messages)
    result = evaluate_bag(oracle(frames), bag, '/depth', image_topic=IMAGE, progress=False)
    assert result['images'] == FRAMES and result['abs_rel'] < 2e-3


# ground truth on a distorted grid

def test_ground_truth_on_the_raw_grid_is_rectified_by_nearest_neighbour(tmp_path, drive):
    """A step edge (2 m left of a column 25 pixels right of the principal point, 5 m right of
    it, in the rectified image) recorded on a strongly distorted raw grid: evaluate scores
    against it rectified with the images' maps by nearest neighbour, so a prediction that is
    that exactly scores 0 (rectified bilinearly, or not at all, it would not), and it stays a
    step, 2 and 5 m and nothing between, off the true edge only next to it."""
    camera, frames = drive
    K = np.array([[70.0, 0, 47.5], [0, 70.0, 31.5], [0, 0, 1]])
    D = np.array([-0.3, 0.09, 0.0, 0.0, 0.0])
    edge = K[0, 2] + 25
    step = np.where(np.arange(WIDTH)[None, :] < edge, 2.0, 5.0) * np.ones((HEIGHT, 1))
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    raw = np.stack([xs.ravel(), ys.ravel()], -1)[:, None, :]
    rectified = cv2.undistortPoints(raw, K, D, P=K).reshape(HEIGHT, WIDTH, 2)
    raw_truth = np.where(rectified[..., 0] < edge, 2.0, 5.0)
    assert (raw_truth != step).sum() > HEIGHT  # the raw grid's edge is bent away from it
    maps = cv2.initUndistortRectifyMap(K, D, None, K, (WIDTH, HEIGHT), cv2.CV_32FC1)
    expected = cv2.remap(raw_truth, *maps, cv2.INTER_NEAREST).astype(np.float32)

    def info(header):
        message = msgs.camera_info(K, WIDTH, HEIGHT, header)
        message.d = D
        return message
    bag = camera_bag(tmp_path / 'distorted', camera, frames[:3], info=info,
                     depth_of=lambda frame: raw_truth)

    def predict(rgb, K_rect, previous=None, turn=None):
        np.testing.assert_allclose(K_rect, K)  # the rectified camera's
        return expected
    result = evaluate_bag(predict, bag, DEPTH_PNG, progress=False, keyframes=False)
    assert result['images'] == 3 and result['unscaled']['rmse'] < 1e-6
    assert set(np.unique(expected).round(3)) == {2.0, 5.0}
    assert (expected != step).sum() <= 2 * HEIGHT  # off only next to the edge
    linear = cv2.remap(raw_truth, *maps, cv2.INTER_LINEAR)
    assert ((linear > 2.01) & (linear < 4.99)).any()  # what bilinear would have made of it


# stamps

def test_depth_is_paired_with_the_nearest_image_within_half_a_frame():
    images = np.arange(12) * 33_333_333 + 10**18
    jitter = np.array([3, -4, 6, -2]) * 1_000_000
    depth = images[::4][:3] + jitter[:3]
    tolerance = half_frame_period_ns(images)
    assert tolerance == 16_666_666
    pairing = pair_by_stamp(images, [*depth, images[-1] + 20_000_000], tolerance)
    assert pairing.pairs == {int(i): int(d) for i, d in zip(images[::4], depth)}
    assert pairing.depth_images == 3  # the last is 20 ms past the last image: outside
    assert '3 of the 3 depth images in the span paired' in pairing.describe()


def test_depth_pairs_with_the_nearer_of_two_close_images_even_outside_the_span():
    images = np.array([0, 10, 40, 50]) * 1_000_000
    pairing = pair_by_stamp(images, [6_000_000, 44_000_000], 20_000_000)
    assert pairing.pairs == {10_000_000: 6_000_000, 40_000_000: 44_000_000}
    # the span holds the first two images only: the depth at 44 ms is nearer an image outside
    # it (40 ms) and is not given to one inside (10 ms, 34 ms away)
    chosen = np.array([True, True, False, False])
    pairing = pair_by_stamp(images, [6_000_000, 44_000_000], 40_000_000, chosen)
    assert pairing.pairs == {10_000_000: 6_000_000}


def test_evaluate_pairs_depth_stamped_a_few_ms_off(tmp_path, drive):
    camera, frames = drive
    offsets = [3_000_000, -5_000_000, 7_000_000, -2_000_000]
    bag = camera_bag(tmp_path / 'jitter', camera, frames,
                     depth_offset_ns=lambda index: offsets[index % 4])
    result = evaluate_bag(oracle(frames), bag, DEPTH_PNG, progress=False)
    assert result['images'] == FRAMES and result['abs_rel'] < 2e-3
    assert result['pairing']['max_offset_ms'] == pytest.approx(7.0)
    tight = evaluate_bag(oracle(frames), bag, DEPTH_PNG, progress=False, tolerance_s=0.004)
    assert tight['pairing']['pairs'] == sum(abs(offsets[i % 4]) <= 4e6 for i in range(FRAMES))


# a part of a recording

def test_span_syntax_and_a_split_that_shares_and_misses_no_image():
    stamps = 10**18 + np.arange(30) * 100_000_000  # 2.9 s
    first, second = TimeSpan(':0.67').mask(stamps), TimeSpan('0.67:').mask(stamps)
    assert not (first & second).any() and (first | second).all()
    assert first.sum() == 20  # t < 0.67 * 2.9 s = 1.943 s
    np.testing.assert_array_equal(np.flatnonzero(TimeSpan('1s:2s').mask(stamps)),
                                  np.arange(10, 20))
    assert TimeSpan('0:1').whole and TimeSpan('').whole
    assert TimeSpan('1.5s:').mask(stamps).sum() == 15
    assert 'span 0.67:: 10 of 30 images' in TimeSpan('0.67:').describe(stamps)
    # seconds up to the last image's: the last image goes to the part that runs to the end
    head, tail = TimeSpan(':2.9s').mask(stamps), TimeSpan('2.9s:').mask(stamps)
    assert head.sum() == 29 and tail.sum() == 1 and not (head & tail).any()
    assert TimeSpan(':100s').mask(stamps).all()
    one = stamps[:1]  # a recording of one image belongs to the part that runs to the end
    assert not TimeSpan(':0.67').mask(one).any() and TimeSpan('0.67:').mask(one).all()
    for bad in ('0.5', '0.2:1.5', 'a:b', '0.8:0.2', '-1s:'):
        with pytest.raises(ValueError, match='span'):
            TimeSpan(bad)


def test_train_and_evaluate_take_a_time_span_of_one_bag(tmp_path, drive):
    camera, frames = drive
    bag = camera_bag(tmp_path / 'rgbd', camera, frames)
    stamps = np.array([f.stamp_ns for f in frames])
    head, tail = TimeSpan(':0.5'), TimeSpan('0.5:')
    dataset = BagDataset([BagSource(bag, span=head)], 64, 64, stride=1, val_fraction=0.0,
                         progress=False)
    kept = dataset.recordings[0].stamps_ns
    np.testing.assert_array_equal(kept, stamps[head.mask(stamps)])
    assert len(kept) == 4  # 0.8 s of frames 0.1 s apart: t < 0.4 s
    seen = []

    def predict(rgb, K, previous=None, turn=None):
        seen.append(next(f.index for f in frames if np.array_equal(f.rgb, rgb)))
        return oracle(frames)(rgb, K)
    result = evaluate_bag(predict, bag, DEPTH_PNG, progress=False, span=tail)
    assert seen == list(range(4, FRAMES)) and result['images'] == FRAMES - 4
    assert result['span'].startswith('span 0.5:: 5 of 9 images')


# grey cameras

def test_a_grey_camera_goes_through_train_infer_evaluate_and_the_node(tmp_path, drive):
    """mono8 is fed as its one channel in all three (what the network's three inputs then
    see is the luminance): the same depth as an RGB image whose channels are that grey."""
    camera, frames = drive
    bag = camera_bag(tmp_path / 'grey', camera, frames, image=grey_image)
    with Bag(bag) as opened:
        _, rgb, message = next(opened.images())
    assert message.encoding == 'mono8' and rgb.shape == (HEIGHT, WIDTH, 3)
    grey = cv2.cvtColor(frames[0].rgb, cv2.COLOR_RGB2GRAY)
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))

    config = load_config(None, ['data.source=bag', f'data.bags=[{bag}]', 'data.width=64',
                                'data.height=64', 'batch_size=2', 'num_workers=0',
                                'data.frame_stride=1', 'data.cache_dir=""', 'model.arch=resnet18'])
    checkpoint = train(config, tmp_path / 'run', max_steps=1, progress=False)
    predictor = DepthPredictor.from_checkpoint(checkpoint, device='cpu')

    summary = infer_bag(predictor, bag, tmp_path / 'depth', NodeConfig(max_depth=1000.0),
                        progress=False)
    assert summary.frames == FRAMES and summary.messages['/camera/depth/image'] == FRAMES

    result = evaluate_bag(predictor.predict, bag, DEPTH_PNG, progress=False)
    assert result['images'] == FRAMES

    info = msgs.camera_info(camera.camera.K, WIDTH, HEIGHT, message.header)
    out = DepthPipeline(predictor, NodeConfig(max_depth=1000.0)).process(message, info)
    as_colour = DepthPipeline(predictor, NodeConfig(max_depth=1000.0)).process(
        msgs.rgb_image(rgb, message.header), info)
    assert out.depth['encoding'] == '32FC1'
    assert bytes(out.depth['data']) == bytes(as_colour.depth['data'])


# the road check

def level_street(frames: int = 3) -> RenderedSequence:
    """A synthetic street seen by a camera 1.65 m above the road, level (the drive's own
    camera pitches and rolls by a fraction of a degree, as a car does)."""
    drive = SyntheticDrive(DriveConfig(width=320, height=128, frames=frames, seed=4))
    poses = drive.poses.copy()
    poses[:, :3, :3] = R_BODY_OPTICAL  # heading along the street, no pitch, no roll
    poses[:, 2, 3] = 1.65
    return RenderedSequence(drive.config, drive.camera, poses, drive.scene, drive.max_depth)


def test_road_check_on_a_rendered_flat_road_is_one_for_metres_and_two_for_twice():
    street = level_street()
    check = RoadCheck(1.65)
    for frame in street:
        assert check.ratio(frame.depth, street.camera) == pytest.approx(1.0, abs=0.02)
        assert check.ratio(2 * frame.depth, street.camera) == pytest.approx(2.0, abs=0.04)
    # and the geometry itself: a row 10 pixels below the horizon is fy h / 10 away
    camera = street.camera
    flat = flat_road_depth(camera, 1.65)
    row = int(np.ceil(camera.cy)) + 10
    assert flat[row, 0] == pytest.approx(camera.fy * 1.65 / (row - camera.cy))
    assert np.isnan(flat[:int(camera.cy)]).all()
    region = road_region(camera)
    assert region[-1, 160] and not region[-1, 10] and not region[:64].any()


def test_road_check_through_evaluate_on_a_bag_without_depth(tmp_path):
    drive = level_street(4)
    frames = list(drive)
    bag = camera_bag(tmp_path / 'street', drive, frames, depth_topics=())
    result = evaluate_bag(oracle(frames, 2.0), bag, None, progress=False,
                          road=RoadCheck(1.65))
    assert 'images' not in result  # no depth: nothing else to score
    assert result['road']['images'] == 4
    assert result['road']['median'] == pytest.approx(2.0, abs=0.04)


# the real recordings (../shared/data)

TUM, KITTI = SHARED / 'tum_fr1_rpy', SHARED / 'kitti_07_excerpt'
needs_tum = pytest.mark.skipif(not TUM.exists(), reason=f'{TUM} is not here')
needs_kitti = pytest.mark.skipif(not KITTI.exists(), reason=f'{KITTI} is not here')


@needs_tum
def test_tum_the_camera_is_found_and_its_compressed_depth_reads_as_metres():
    with Bag(TUM) as bag:
        assert bag.image_topic == '/camera/rgb/image_color/compressed'
        assert bag.camera_info_topic == '/camera/rgb/camera_info'
        topic = '/camera/depth_registered/image_raw/compressedDepth'
        assert list(bag.depth_topics()) == [topic]
        depth = depth_to_metres(bag.first_message(topic))
    assert depth.shape == (480, 640)
    valid = depth[np.isfinite(depth)]
    assert valid.size > 0.5 * depth.size and 0.4 < np.median(valid) < 5.0  # an office


@needs_tum
def test_tum_100_hz_motion_capture_is_interpolated_to_every_image():
    with Bag(TUM) as bag:
        stamps = np.sort(bag.image_stamps())
        motion, report = read_camera_motion(bag, stamps, MotionOptions())
        samples = {}
        for item in bag.messages(['/tf']):
            for transform in item.message.transforms:
                stamp = transform.header.stamp.sec * 10**9 + transform.header.stamp.nanosec
                t = transform.transform.translation
                samples[stamp] = (t.x, t.y, t.z)
    assert motion is not None and motion.covered == len(stamps) == 723, report
    times = np.array(sorted(samples))
    positions = np.array([samples[t] for t in times])
    assert np.median(np.diff(times)) == pytest.approx(10_000_000, rel=0.05)  # 100 Hz
    # each image's position is the linear blend of the two samples around it
    for index in range(0, len(stamps), 50):
        after = np.searchsorted(times, stamps[index])
        alpha = (stamps[index] - times[after - 1]) / (times[after] - times[after - 1])
        expected = (1 - alpha) * positions[after - 1] + alpha * positions[after]
        np.testing.assert_allclose(motion.poses[index, :3, 3], expected, atol=1e-6)


@needs_kitti
def test_kitti_grey_camera_is_read_as_three_equal_channels():
    with Bag(KITTI) as bag:
        _, rgb, message = next(bag.images())
        assert 'mono8' in message.format and bag.depth_topics() == {}
    assert rgb.shape == (370, 1226, 3)
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])


@needs_kitti
def test_kitti_training_reads_its_span(tmp_path):
    with AnyReader([KITTI]) as reader:
        assert sum(c.msgcount for c in reader.connections
                   if c.topic.endswith('compressed')) == 160
    with Bag(KITTI) as bag:
        stamps = bag.image_stamps()
    tail = TimeSpan('0.9:')
    dataset = BagDataset([BagSource(KITTI, span=tail)], 128, 64, stride=1, val_fraction=0.0,
                         progress=False)
    kept = dataset.recordings[0].stamps_ns
    assert 14 <= len(kept) <= 18  # the last 10% of 16.5 s at about 10 Hz
    np.testing.assert_array_equal(kept, np.sort(stamps[tail.mask(stamps)]))


def test_evaluate_command_reports_the_span_the_pairs_and_the_constant(tmp_path, drive,
                                                                      checkpoint):
    camera, frames = drive
    bag = camera_bag(tmp_path / 'rgbd', camera, frames, depth_offset_ns=4_000_000)
    script = Path(sys.executable).with_name('hybrid-depth')
    command = [str(script)] if script.exists() else [sys.executable, '-m', 'hybrid_depth_ros.cli']
    result = subprocess.run(command + ['evaluate', '--checkpoint', str(checkpoint), '--bag',
                                       str(bag), '--span', '0.5:', '--device', 'cpu', '--json',
                                       str(tmp_path / 'scores.json')],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'span 0.5:: 5 of 9 images' in result.stdout
    assert ('ground truth: 5 of the 5 depth images in the span paired with an image within '
            '50.0 ms; median offset 4.0 ms') in result.stdout
    assert 'for reference, a constant depth on the same pixels: AbsRel' in result.stdout
    scores = json.loads((tmp_path / 'scores.json').read_text())
    assert scores['images'] == 5 and scores['constant']['unscaled']['abs_rel'] > 0
    road = subprocess.run(command + ['evaluate', '--checkpoint', str(checkpoint), '--bag',
                                     str(bag), '--road-camera-height', '1.65', '--device', 'cpu'],
                          capture_output=True, text=True, timeout=300)
    assert road.returncode == 0, road.stderr
    assert 'road check (1.65 m above a flat road' in road.stdout and 'abs_rel' not in road.stdout
    assert f'note: depth on {DEPTH_PNG} not scored' in road.stdout
    for bad, problem in ((['--span', '0.5'], 'span'), (['--span', '0.51s:0.59s'], 'no image'),
                         (['--gt-depth-topic', IMAGE], 'no depth topic')):
        failed = subprocess.run(command + ['evaluate', '--checkpoint', str(checkpoint), '--bag',
                                           str(bag), *bad], capture_output=True, text=True,
                                timeout=300)
        assert failed.returncode == 1 and problem in failed.stderr
        assert 'Traceback' not in failed.stderr
    alone = subprocess.run(command + ['evaluate', '--checkpoint', str(checkpoint), '--span',
                                      '0.5:'], capture_output=True, text=True, timeout=300)
    assert alone.returncode == 1 and '--span goes with --bag' in alone.stderr
