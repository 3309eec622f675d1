"""Recorded bags as input: reading (storage formats, transports, type definitions), intrinsics
and undistortion, triplets, the decode cache, bag -> bag inference, evaluation, bad input."""
import copy
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader

from hybrid_depth_core.datasets import bag_dataset
from hybrid_depth_core.datasets.bag_dataset import (BagDataset, BagSource, Recording,
                                                    build_triplets, decode_recording)
from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.synthetic.bag_writer import (CAMERA_INFO_TOPIC, DEPTH_GT_TOPIC, IMAGE_TOPIC,
                                                    write_drive_bag)
from hybrid_depth_core.tracks.image_motion import pair_turns
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.evaluation.bag_evaluation import evaluate_bag
from hybrid_depth_core.geometry import scale_intrinsics
from hybrid_depth_core.messages import builders as msgs
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.networks import DepthModel, DepthModelConfig, PoseNet
from hybrid_depth_core.runtime.predictor import DepthPredictor
from hybrid_depth_core.runtime.bag_inference import infer_bag
from hybrid_depth_core.runtime.node_config import NodeConfig
from recorded_bags import write_bag

WIDTH, HEIGHT, FRAMES = 128, 64, 6
TRAIN_SIZE = (64, 64)


@pytest.fixture(scope='module')
def drive():
    drive = SyntheticDrive(DriveConfig(width=WIDTH, height=HEIGHT, frames=FRAMES, seed=7))
    return drive, [drive.render(i) for i in range(FRAMES)]


@pytest.fixture(scope='module')
def bags(tmp_path_factory, drive):
    """The drive as a bag in each storage format and transport."""
    root = tmp_path_factory.mktemp('bags')
    return {(storage, compressed): write_drive_bag(drive[0], root / f'{storage}-{compressed}',
                                                   storage, compressed, progress=False).path
            for storage in ('mcap', 'sqlite3') for compressed in (False, True)}


@pytest.fixture(scope='module')
def predictor():
    torch.manual_seed(0)
    model = DepthModel(DepthModelConfig(arch='resnet18', multi_frame=True))
    return DepthPredictor(model.eval(), PoseNet().eval(), TRAIN_SIZE, torch.device('cpu'))


def camera_messages(frames, K, images=None, info=True):
    """Image (+ camera_info) messages of rendered frames, stamped like them."""
    messages = []
    for i, frame in enumerate(frames):
        header = msgs.header(frame.stamp_ns, 'camera')
        rgb = frame.rgb if images is None else images[i]
        messages.append((IMAGE_TOPIC, 'sensor_msgs/msg/Image', msgs.rgb_image(rgb, header),
                         frame.stamp_ns))
        if info:
            messages.append((CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo',
                             msgs.camera_info(K, rgb.shape[1], rgb.shape[0], header),
                             frame.stamp_ns))
    return messages


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
@pytest.mark.parametrize('compressed', [False, True])
def test_every_storage_and_transport_decodes_to_the_recorded_frames(bags, drive, storage,
                                                                    compressed):
    camera, frames = drive[0].camera, drive[1]
    recording = decode_recording(BagSource(bags[(storage, compressed)]), *TRAIN_SIZE,
                                 progress=False)
    assert recording.rgb.shape == (FRAMES, TRAIN_SIZE[1], TRAIN_SIZE[0], 3)
    assert list(recording.stamps_ns) == [f.stamp_ns for f in frames]
    expected_K = scale_intrinsics(camera.K, TRAIN_SIZE[0] / WIDTH, TRAIN_SIZE[1] / HEIGHT)
    np.testing.assert_allclose(recording.K[0], expected_K, rtol=1e-9)
    expected = cv2.resize(frames[2].rgb, TRAIN_SIZE, interpolation=cv2.INTER_AREA)
    error = np.abs(recording.rgb[2].astype(int) - expected).mean()
    assert error < (3.0 if compressed else 1e-9)  # JPEG at quality 90 vs exact


def test_a_bag_without_type_definitions_is_read_with_humble_types(bags, tmp_path):
    bag = tmp_path / 'humble'
    shutil.copytree(bags[('sqlite3', False)], bag)
    database = next(bag.glob('*.db3'))
    with sqlite3.connect(database) as connection:  # what Humble's recorder leaves out
        connection.execute('DELETE FROM message_definitions')
    with pytest.raises(Exception, match='no type definitions'):
        AnyReader([bag]).open()  # without the default typestore, rosbags cannot read it
    recording = decode_recording(BagSource(bag), *TRAIN_SIZE, progress=False)
    assert len(recording.stamps_ns) == FRAMES


def test_distorted_images_are_undistorted_to_the_pinhole_camera(tmp_path, drive):
    """A dot drawn where plumb_bob distortion puts a 3D point lands, after reading, where the
    pinhole camera (scaled to the training size) projects it."""
    frames = drive[1][:3]
    K = np.array([[60.0, 0, 63.5], [0, 60.0, 31.5], [0, 0, 1]])
    D = np.array([-0.35, 0.08, 0.001, -0.002, 0.0])
    point = np.array([[0.8, 0.4, 1.0]])  # x/z, y/z: off-centre, where distortion is strong
    distorted, _ = cv2.projectPoints(point, np.zeros(3), np.zeros(3), K, D)
    u, v = distorted.reshape(2)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    blob = np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * 1.5 ** 2))
    image = np.repeat((255 * blob)[..., None], 3, axis=2).astype(np.uint8)
    messages = camera_messages(frames, K, images=[image] * 3)
    for _, msgtype, message, _ in messages:
        if msgtype.endswith('CameraInfo'):
            message.d = D
    recording = decode_recording(BagSource(write_bag(tmp_path / 'distorted', messages)),
                                 WIDTH, HEIGHT, progress=False)
    grey = recording.rgb[0, ..., 0].astype(float)
    centroid = np.array([(grey * xs).sum(), (grey * ys).sum()]) / grey.sum()
    expected = (K @ point[0])[:2]
    # Within 1 pixel of a 12-pixel correction (resampling skews the blob a little).
    assert np.linalg.norm(expected - (u, v)) > 10
    assert np.linalg.norm(centroid - expected) < 1.0, (centroid, expected, (u, v))


def test_intrinsics_file_is_used_when_the_bag_has_no_camera_info(tmp_path, drive):
    frames = drive[1][:3]
    K = drive[0].camera.K
    bag = write_bag(tmp_path / 'noinfo', camera_messages(frames, K, info=False))
    with pytest.raises(UserError, match='no camera_info.*--intrinsics'):
        decode_recording(BagSource(bag), *TRAIN_SIZE, progress=False)
    intrinsics = tmp_path / 'camera.yaml'
    intrinsics.write_text(f'fx: {K[0, 0]}\nfy: {K[1, 1]}\ncx: {K[0, 2]}\ncy: {K[1, 2]}\n'
                          f'width: {WIDTH}\nheight: {HEIGHT}\n')
    recording = decode_recording(BagSource(bag, intrinsics=str(intrinsics)), *TRAIN_SIZE,
                                 progress=False)
    np.testing.assert_allclose(recording.K[0], scale_intrinsics(K, 0.5, 1.0), rtol=1e-9)


def test_triplets_skip_a_standing_camera_break_at_gaps_and_split_by_time():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 16, 16, 3), dtype=np.uint8)
    images[4] = images[3]          # the camera stood still for one frame
    stamps = np.arange(12) * 100
    stamps[8:] += 1000              # a gap before frame 8
    recording = Recording(images, stamps.astype(np.int64), np.tile(np.eye(3), (12, 1, 1)))
    triplets = build_triplets(recording, stride=1, val_fraction=0.2)
    assert triplets.static_frames == 1 and triplets.gaps == 1
    # Kept: 0 1 2 3 5 6 7 | gap, and the last 20% of the time span (t > 1680) | 8 9 10 11.
    assert triplets.train == [(0, 1, 2), (1, 2, 3), (2, 3, 5), (3, 5, 6), (5, 6, 7)]
    assert triplets.val == [(8, 9, 10), (9, 10, 11)]
    assert build_triplets(recording, stride=2, val_fraction=0.0).train == [
        (0, 2, 5), (1, 3, 6), (2, 5, 7)]  # 8 9 10 11 is too short for stride 2


def test_training_samples_come_from_the_disk_cache_the_second_time(bags, tmp_path, monkeypatch):
    source = BagSource(bags[('mcap', True)])
    first = BagDataset([source], *TRAIN_SIZE, stride=1, cache_dir=tmp_path, val_fraction=0.0,
                       progress=False)
    assert len(list(tmp_path.glob('*.npz'))) == 1
    assert len(first) == FRAMES - 2
    sample = first[0]
    assert sample[('color', 0, 0)].shape == (3, TRAIN_SIZE[1], TRAIN_SIZE[0])

    def no_decoding(*args, **kwargs):
        raise AssertionError('decoded again despite the cache')
    monkeypatch.setattr(bag_dataset, 'decode_recording', no_decoding)
    second = BagDataset([source], *TRAIN_SIZE, stride=1, cache_dir=tmp_path, val_fraction=0.0,
                        progress=False, turns=True)
    assert torch.equal(second[0][('color', 0, 0)], sample[('color', 0, 0)])
    # turns only when asked for (turn-prior models), those of the triplet's own pairs
    assert ('turn', 1) not in sample
    recording = second.recordings[0]
    measured = pair_turns(recording.rgb, recording.K, 1)
    np.testing.assert_allclose(second[0][('turn', -1)].numpy(), measured[1], atol=1e-6)
    np.testing.assert_allclose(second[0][('turn', 1)].numpy(), measured[2], atol=1e-6)


def test_infer_writes_a_new_bag_with_the_predictors_depth(bags, tmp_path, drive, predictor):
    source = bags[('sqlite3', False)]
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    out = tmp_path / 'depth_bag'
    config = NodeConfig(min_depth=0.01, max_depth=1000.0)
    summary = infer_bag(predictor, source, out, config, progress=False)
    frames, K = drive[1], drive[0].camera.K
    predictor.reset()
    expected, ages = [], []  # what the stream gives, keyframe choice included
    for frame in frames:
        expected.append(predictor.stream(frame.rgb, K))
        ages.append(predictor.last_lookup_age)
    assert summary.frames == FRAMES
    assert summary.multi_frame_frames == sum(age is not None for age in ages) > 0
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before  # input untouched
    topics: dict = {}
    with AnyReader([out]) as reader:
        for connection, _, raw in reader.messages():
            topics.setdefault(connection.topic, []).append(
                (raw, reader.deserialize(raw, connection.msgtype)))
    assert set(topics) == {IMAGE_TOPIC, CAMERA_INFO_TOPIC, '/camera/depth/image',
                           '/camera/depth/camera_info', '/camera/depth/points'}
    with AnyReader([source]) as reader:
        originals = [raw for c, _, raw in reader.messages() if c.topic == IMAGE_TOPIC]
    assert [raw for raw, _ in topics[IMAGE_TOPIC]] == originals  # copied byte for byte
    depth_msgs = [message for _, message in topics['/camera/depth/image']]
    for message, depth in zip(depth_msgs, expected):
        assert message.header.stamp.sec * 10**9 + message.header.stamp.nanosec in {
            f.stamp_ns for f in frames}
        np.testing.assert_allclose(depth_to_metres(message), depth, rtol=1e-5)
    assert len(topics['/camera/depth/points']) == FRAMES


def test_evaluate_bag_against_its_depth_topic(bags, drive):
    frames = {f.stamp_ns: f.depth for f in drive[1]}

    # the GT, half as far: median scaling undoes that
    def oracle(rgb, K, previous=None, turn=None):
        for frame in drive[1]:
            if np.array_equal(frame.rgb, rgb):
                return 0.5 * np.nan_to_num(frame.depth, nan=500.0)
        raise AssertionError('unknown frame')
    result = evaluate_bag(oracle, bags[('mcap', False)], DEPTH_GT_TOPIC, progress=False)
    assert result['images'] == len(frames)
    assert result['abs_rel'] < 1e-6 and result['scale_median'] == pytest.approx(2.0)
    # and as predicted: everything half as far, |gt - gt / 2| / gt = 0.5
    assert result['median_scaled']['abs_rel'] < 1e-6
    assert result['unscaled']['abs_rel'] == pytest.approx(0.5)
    with pytest.raises(UserError, match="no depth topic '/nope'.*depth_gt"):
        evaluate_bag(oracle, bags[('mcap', False)], '/nope', progress=False)


def test_evaluate_bag_starts_a_new_sequence_after_a_gap_as_the_node_does(drive, tmp_path):
    sequence = drive[0]
    gap_after = FRAMES // 2
    stamps = [sequence.stamp_ns(i) + (2 * 10**9 if i > gap_after else 0) for i in range(FRAMES)]
    sequence = copy.copy(sequence)
    sequence.stamp_ns = stamps.__getitem__  # two seconds missing halfway
    bag = write_drive_bag(sequence, tmp_path / 'gap', progress=False).path
    matched = []

    def predict(rgb, K, previous=None, turn=None):
        matched.append(previous is not None)
        return np.ones(rgb.shape[:2], np.float32)
    evaluate_bag(predict, bag, DEPTH_GT_TOPIC, progress=False)
    assert not matched[0] and not matched[gap_after + 1]  # each sequence starts alone
    assert any(matched[1:gap_after + 1]) and any(matched[gap_after + 2:])


def test_16_bit_millimetre_depth_decodes_to_metres():
    depth_mm = np.array([[0, 1500], [65535, 250]], dtype='<u2')
    message = msgs.TYPESTORE.types['sensor_msgs/msg/Image'](
        header=msgs.header(1, 'camera'), height=2, width=2, encoding='16UC1', is_bigendian=0,
        step=4, data=depth_mm.view(np.uint8).reshape(-1))
    np.testing.assert_allclose(depth_to_metres(message), [[np.nan, 1.5], [65.535, 0.25]],
                               rtol=1e-6)


def test_bad_bags_give_one_clear_error_and_leave_no_output(tmp_path, bags, drive, predictor):
    frames, K = drive[1], drive[0].camera.K
    not_a_bag = tmp_path / 'notes'
    not_a_bag.mkdir()
    (not_a_bag / 'readme.txt').write_text('hello')
    corrupt = tmp_path / 'corrupt'
    shutil.copytree(bags[('mcap', False)], corrupt)
    data = next(corrupt.glob('*.mcap'))
    data.write_bytes(data.read_bytes()[:len(data.read_bytes()) // 2])
    two_frames = write_bag(tmp_path / 'two', camera_messages(frames[:2], K))
    # The second image is smaller; the only camera_info is the first frame's.
    images = [frames[0].rgb, frames[1].rgb[:32, :64].copy(), frames[2].rgb]
    resized = write_bag(tmp_path / 'resized', camera_messages(frames[:1], K)[1:] + [
        m for m in camera_messages(frames[:3], K, images) if m[0] == IMAGE_TOPIC])
    other = msgs.rgb_image(frames[0].rgb, msgs.header(1, 'x'))
    two_images = write_bag(tmp_path / 'two_topics', camera_messages(frames[:3], K) + [
        ('/other/image', 'sensor_msgs/msg/Image', other, 1)])
    no_metadata = tmp_path / 'no_metadata'
    shutil.copytree(bags[('mcap', False)], no_metadata)
    (no_metadata / 'metadata.yaml').unlink()
    storage_file = next(no_metadata.glob('*.mcap'))
    ros1 = tmp_path / 'old.bag'
    ros1.write_bytes(b'#ROSBAG V2.0\n')
    cases = [
        (BagSource(tmp_path / 'missing'), 'does not exist'),
        (BagSource(not_a_bag), 'no metadata.yaml, and no .mcap or .db3 file either'),
        (BagSource(no_metadata), f'no metadata.yaml; give the storage file itself, e.g. '
                                 f'{storage_file}'),
        (BagSource(corrupt), 'damaged|not a readable'),
        (BagSource(bags[('mcap', False)], image_topic='/camera/nope'),
         "no image topic '/camera/nope'.*image_raw"),
        (BagSource(two_images), '2 camera image topics.*--image-topic'),
        (BagSource(two_frames), 'has 2 readable images.*at least 3'),
        (BagSource(resized), 'change size mid-bag'),
        (BagSource(ros1), 'ROS 1 bag.*rosbags-convert'),
    ]
    for source, message in cases:
        with pytest.raises(UserError, match=message):
            decode_recording(source, *TRAIN_SIZE, progress=False)
    cache = tmp_path / 'cache'
    with pytest.raises(UserError):
        BagDataset([BagSource(two_frames)], *TRAIN_SIZE, cache_dir=cache, progress=False)
    assert not cache.exists() or not any(cache.iterdir())
    out = tmp_path / 'out'
    for bag in (corrupt, not_a_bag):
        with pytest.raises(UserError):
            infer_bag(predictor, bag, out, NodeConfig(), progress=False)
        assert not out.exists() and not list(tmp_path.glob('.out.partial-*'))
    # The output never goes into the recording it reads.
    good = bags[('mcap', False)]
    before = sorted(path.name for path in good.iterdir())
    with pytest.raises(UserError, match='is inside the input'):
        infer_bag(predictor, good, good / 'depth', NodeConfig(), progress=False)
    assert sorted(path.name for path in good.iterdir()) == before


def test_record_train_infer_evaluate_from_the_command_line(tmp_path):
    """The user's round trip with the console script: sample -> train --bag -> infer ->
    evaluate --bag, each exit 0 and saying what it did."""
    script = Path(sys.executable).with_name('hybrid-depth')
    command = [str(script)] if script.exists() else [sys.executable, '-m', 'hybrid_depth_ros.cli']

    def run(*args):
        result = subprocess.run(command + [str(a) for a in args], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert 'Traceback' not in result.stderr
        return result

    bag, run_dir, out = tmp_path / 'drive', tmp_path / 'run', tmp_path / 'depth'
    run('sample', bag, '--frames', 8, '--width', 128, '--height', 64, '--seed', 9,
        '--storage', 'sqlite3', '--compressed')
    trained = run('train', '--bag', bag, '--out', run_dir, '--max-steps', 2, '--frame-stride', 1,
                  'data.width=64',
                  'data.height=64', 'batch_size=2', 'num_workers=0',
                  f'data.cache_dir={tmp_path / "cache"}', 'model.arch=resnet18')
    assert '8 frames, 0 static skipped, 0 gaps' in trained.stdout + trained.stderr
    assert (run_dir / 'last.pt').exists() and list((tmp_path / 'cache').glob('*.npz'))
    inferred = run('infer', '--checkpoint', run_dir / 'last.pt', '--bag', bag, '--out', out,
                   '--device', 'cpu')
    assert f'wrote {out}: 8 frames' in inferred.stdout
    assert '/camera/depth/image 8' in inferred.stdout
    evaluated = run('evaluate', '--checkpoint', run_dir / 'last.pt', '--bag', bag,
                    '--gt-depth-topic', DEPTH_GT_TOPIC, '--device', 'cpu')
    assert 'abs_rel' in evaluated.stdout and '8 images' in evaluated.stdout
    failed = subprocess.run(command + ['infer', '--checkpoint', str(run_dir / 'last.pt'),
                                       '--bag', str(tmp_path / 'nope'), '--out',
                                       str(tmp_path / 'x')], capture_output=True, text=True,
                            timeout=120)
    assert failed.returncode == 1 and 'does not exist' in failed.stderr
    assert 'Traceback' not in failed.stderr and not (tmp_path / 'x').exists()


def broken_image(message):
    """The same Image with its pixel data cut short: undecodable."""
    broken = copy.copy(message)
    broken.data = message.data[:10]
    return broken


def test_infer_and_evaluate_skip_undecodable_images_and_say_so(tmp_path, drive, bags, predictor):
    frames, K = drive[1], drive[0].camera.K
    messages = camera_messages(frames, K)
    messages[2] = messages[2][:2] + (broken_image(messages[2][2]),) + messages[2][3:]
    assert messages[2][0] == IMAGE_TOPIC
    gt = [(DEPTH_GT_TOPIC, 'sensor_msgs/msg/Image',
           msgs.depth_image(f.depth, msgs.header(f.stamp_ns, 'camera')), f.stamp_ns)
          for f in frames]
    bag = write_bag(tmp_path / 'one_bad', messages + gt)
    summary = infer_bag(predictor, bag, tmp_path / 'out', NodeConfig(), progress=False)
    assert summary.frames == len(frames) - 1
    assert summary.skipped.startswith(f'skipped 1 undecodable image of {bag}')
    with AnyReader([tmp_path / 'out']) as reader:
        depth = [c for c in reader.connections if c.topic.endswith('/depth/image')]
        assert sum(c.msgcount for c in depth) == len(frames) - 1
    result = evaluate_bag(lambda rgb, K, previous, turn: np.ones(rgb.shape[:2]), bag,
                          DEPTH_GT_TOPIC, progress=False)
    assert result['images'] == len(frames) - 1 and result['skipped_images'] == 1

    # A bag of mostly damage stops, past max(10, a tenth of its images), and writes nothing.
    many = [(t, m, broken_image(msg) if t == IMAGE_TOPIC else msg, s)
            for t, m, msg, s in camera_messages(frames * 3, K)]
    many = [(t, m, msg, 1000 + i) for i, (t, m, msg, s) in enumerate(many)]
    damaged = write_bag(tmp_path / 'mostly_bad', many)
    with pytest.raises(UserError, match='more than 10 undecodable images, stopping'):
        infer_bag(predictor, damaged, tmp_path / 'out2', NodeConfig(), progress=False)
    assert not (tmp_path / 'out2').exists()


def test_written_bags_carry_chunk_crcs_so_a_flipped_pixel_reads_as_damage(tmp_path, drive):
    bag = write_drive_bag(drive[0], tmp_path / 'drive', progress=False).path
    data = next(bag.glob('*.mcap'))
    content = bytearray(data.read_bytes())
    pixels = content.find(drive[1][2].rgb.tobytes()[:256])  # the third image's first pixels
    assert pixels > 0
    with Bag(bag) as intact:
        assert len(list(intact.images())) == len(drive[1])
    content[pixels + 100] ^= 0x01  # one bit of one pixel
    data.write_bytes(bytes(content))
    with pytest.raises(UserError, match=f'bag {bag} is damaged: Chunk checksum mismatch'):
        with Bag(bag) as damaged:
            list(damaged.images())


def test_a_recording_cut_short_is_recovered_with_allow_partial_bags(tmp_path, drive, predictor):
    bag = write_drive_bag(drive[0], tmp_path / 'drive', progress=False).path
    data = next(bag.glob('*.mcap'))
    whole = data.read_bytes()
    # The recorder killed before it wrote the summary: the last 100 bytes missing.
    data.write_bytes(whole[:-100])
    with pytest.raises(UserError, match='not a readable rosbag2.*--allow-partial-bags recovers'):
        Bag(bag)
    with Bag(bag, allow_partial=True) as cut:
        assert len(list(cut.images())) == len(drive[1])
        assert 'recovered' in cut.damage
        recovered = cut.reader._scratch
    assert not recovered.exists()  # the temporary copy goes with the reader
    summary = infer_bag(predictor, bag, tmp_path / 'out', NodeConfig(), progress=False,
                        allow_partial=True)
    assert summary.frames == len(drive[1])
    # Cut in the middle of the data (one chunk here): what precedes the cut is all there is.
    data.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(UserError, match='nothing could be recovered.*cut short'):
        Bag(bag, allow_partial=True)
    assert data.read_bytes() == whole[:len(whole) // 2]  # the input is only read


def test_a_long_recording_cut_mid_data_gives_the_frames_of_its_complete_chunks(tmp_path, drive):
    frames, K = drive[1], drive[0].camera.K
    messages = [(topic, msgtype, message, 1000 + i) for i, (topic, msgtype, message, _) in
                enumerate(camera_messages(frames * 12, K))]  # about 2 MiB: two 1 MiB chunks
    bag = write_bag(tmp_path / 'long', messages)
    data = next(bag.glob('*.mcap'))
    data.write_bytes(data.read_bytes()[:int(data.stat().st_size * 0.75)])
    with Bag(bag, allow_partial=True) as cut:
        images = [rgb for _, rgb, _ in cut.images()]
    assert 0 < len(images) < len(frames) * 12
    for index, rgb in enumerate(images):  # the first ones, in order, intact
        np.testing.assert_array_equal(rgb, frames[index % len(frames)].rgb)


def test_a_damaged_sqlite3_recording_gives_its_rows_before_the_damage(tmp_path, bags, drive):
    bag = tmp_path / 'sqlite'
    shutil.copytree(bags[('sqlite3', False)], bag)
    data = next(bag.glob('*.db3'))
    whole = data.read_bytes()
    data.write_bytes(whole[:int(len(whole) * 0.6)])  # the last 40% of its pages lost
    with pytest.raises(UserError, match='not a readable rosbag2.*--allow-partial-bags'):
        Bag(bag)
    with Bag(bag, allow_partial=True) as cut:
        images = [rgb for _, rgb, _ in cut.images()]
        assert 'a damaged database' in cut.damage
    assert 0 < len(images) < len(drive[1])
    for index, rgb in enumerate(images):  # intact, none made up from the missing pages
        np.testing.assert_array_equal(rgb, drive[1][index].rgb)
