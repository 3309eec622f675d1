"""Issue 35: bags whose every image is skipped, and output names that ROS would refuse.

Binned and region-of-interest cameras (REP 104) are valid input: `hybrid-depth infer` gives them
depth through the image's own camera (the sensor's K moved by the ROI offset, divided by the
binning), the same depth as a camera calibrated at that size. A bag that gives no depth at all
is an error naming the bag and why, with nothing written; a --namespace that is no ROS 2 name
is refused before any work. The command runs in-process (cli.main) on an untrained checkpoint:
the tests compare outputs, not depth quality."""
import copy
import re

import numpy as np
import pytest
import torch
from rosbags.highlevel import AnyReader

from hybrid_depth_core.networks.checkpoint import ModelSection, save_checkpoint
from hybrid_depth_core.config_dicts import to_dict
from hybrid_depth_core.synthetic.bag_writer import (CAMERA_INFO_TOPIC, DEPTH_GT_TOPIC, IMAGE_TOPIC)
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages import builders as msgs
from hybrid_depth_core.messages.depth import depth_to_metres
from hybrid_depth_core.runtime.node_config import (NAME_RULE, check_topic_name,
                                                   fully_qualified_namespace, name_problem)
from hybrid_depth_core.training.config import load_config
from hybrid_depth_core.training.objective import SelfSupervisedObjective
from hybrid_depth_ros import cli
from recorded_bags import write_bag

SENSOR = (128, 64)  # the full sensor the camera_info is calibrated at
FRAMES = 3


@pytest.fixture(scope='module')
def drive():
    drive = SyntheticDrive(DriveConfig(width=SENSOR[0], height=SENSOR[1], frames=FRAMES, seed=5))
    return drive.camera.K, [drive.render(i) for i in range(FRAMES)]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory, drive):
    """An untrained multi-frame ResNet18 checkpoint at 64x64, in the layout train writes, with
    the training camera's focal length (so the framing resizes each camera to it)."""
    torch.manual_seed(0)
    config = load_config(None, ['data.width=64', 'data.height=64', 'model.arch=resnet18'])
    objective = SelfSupervisedObjective(config.model, config.loss)
    path = tmp_path_factory.mktemp('run') / 'last.pt'
    K = drive[0]
    focal = (float(K[0, 0]) * 64 / SENSOR[0], float(K[1, 1]) * 64 / SENSOR[1])
    save_checkpoint(path, {'model': ModelSection(config.model, (64, 64), False, None,
                                                 focal).to_dict(),
                           'config': to_dict(config), 'step': 0,
                           'objective': objective.state_dict()})
    return path


def camera_messages(frames, image_of, info_of, depth=False) -> list:
    """Every frame's image (image_of(rgb)) and camera_info (info_of(header)), stamped like the
    frame, and with `depth` its exact depth on DEPTH_GT_TOPIC, as write_bag takes them."""
    messages = []
    for frame in frames:
        header = msgs.header(frame.stamp_ns, 'camera')
        messages += [(IMAGE_TOPIC, 'sensor_msgs/msg/Image',
                      msgs.rgb_image(image_of(frame.rgb), header), frame.stamp_ns),
                     (CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', info_of(header),
                      frame.stamp_ns)]
        if depth:
            messages.append((DEPTH_GT_TOPIC, 'sensor_msgs/msg/Image',
                             msgs.depth_image(frame.depth, header), frame.stamp_ns))
    return messages


def camera_bag(path, frames, image_of, info_of):
    return write_bag(path, camera_messages(frames, image_of, info_of))


def read_topics(bag) -> dict[str, list]:
    topics: dict[str, list] = {}
    with AnyReader([bag]) as reader:
        for connection, _, raw in reader.messages():
            topics.setdefault(connection.topic, []).append(
                reader.deserialize(raw, connection.msgtype))
    return topics


def infer(capsys, checkpoint, bag, out, *options) -> tuple[int, str, str]:
    code = cli.main(['infer', '--checkpoint', str(checkpoint), '--bag', str(bag), '--out',
                     str(out), '--device', 'cpu', *map(str, options)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cloud_xyz(message) -> np.ndarray:
    """(H, W, 3) x, y, z of an organized PointCloud2 as outputs.point_cloud_fields packs it."""
    floats = np.frombuffer(bytes(message.data), '<f4')
    return floats.reshape(message.height, message.width, -1)[..., :3]


# (binning, ROI x, y, width, height on the sensor): the image is the ROI (the sensor when all
# zero) divided by the binning.
READOUTS = {'binned': ((2, 2), (0, 0, 0, 0)),
            'roi': ((1, 1), (32, 16, 64, 32)),
            'roi_binned': ((2, 2), (32, 16, 64, 32))}


@pytest.mark.parametrize('readout', sorted(READOUTS))
def test_binned_and_roi_images_get_depth_through_their_own_camera(tmp_path, capsys, drive,
                                                                  checkpoint, readout):
    (bin_x, bin_y), (x, y, width, height) = READOUTS[readout]
    width, height = (width or SENSOR[0]), (height or SENSOR[1])
    K, frames = drive

    def image_of(rgb):  # what the camera sends: the ROI read out, then binned
        window = rgb[y:y + height, x:x + width].astype(np.float32)
        binned = window.reshape(height // bin_y, bin_y, width // bin_x, bin_x, 3).mean((1, 3))
        return np.ascontiguousarray(binned.round().astype(np.uint8))

    def sensor_info(header):  # REP 104: calibrated at the full sensor, readout described
        info = msgs.camera_info(K, *SENSOR, header)
        info.binning_x, info.binning_y = bin_x, bin_y
        info.roi.x_offset, info.roi.y_offset = x, y
        info.roi.width, info.roi.height = (width, height) if any(READOUTS[readout][1]) else (0, 0)
        return info

    # The image's own camera, by hand: the principal point moved by the ROI's offset, then
    # focal lengths and principal point divided by the binning (image_geometry's rule).
    own = K.copy()
    own[0, 2] -= x
    own[1, 2] -= y
    own[0] /= bin_x
    own[1] /= bin_y
    size = (width // bin_x, height // bin_y)

    def own_info(header):  # the same camera, calibrated at the image's size
        return msgs.camera_info(own, *size, header)

    described = camera_bag(tmp_path / 'described', frames, image_of, sensor_info)
    calibrated = camera_bag(tmp_path / 'calibrated', frames, image_of, own_info)
    outputs = {}
    for name, bag in (('described', described), ('calibrated', calibrated)):
        code, out, err = infer(capsys, checkpoint, bag, tmp_path / f'{name}_depth')
        assert code == 0, err
        assert f'{FRAMES} frames' in out and 'warning: skipped' not in out
        outputs[name] = read_topics(tmp_path / f'{name}_depth')
    got, expected = outputs['described'], outputs['calibrated']
    assert len(got['/camera/depth/image']) == FRAMES
    for a, b in zip(got['/camera/depth/image'], expected['/camera/depth/image']):
        depth = depth_to_metres(a)
        assert depth.shape == (size[1], size[0]) and np.isfinite(depth).mean() > 0.5
        np.testing.assert_array_equal(depth, depth_to_metres(b))
    for info in got['/camera/depth/camera_info']:
        # The depth's camera_info describes the depth image itself: its size, its own K and P,
        # no binning or ROI left to apply (a second application would shrink it again).
        assert (info.width, info.height) == size
        assert (info.binning_x, info.binning_y) == (0, 0)
        assert (info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height) == (
            0, 0, 0, 0)
        np.testing.assert_allclose(info.k.reshape(3, 3), own, rtol=1e-9)
        np.testing.assert_allclose(info.p.reshape(3, 4)[:, :3], own, rtol=1e-9)
    for cloud, depth_message in zip(got['/camera/depth/points'], got['/camera/depth/image']):
        xyz, depth = cloud_xyz(cloud), depth_to_metres(depth_message)
        v, u = np.mgrid[:size[1], :size[0]]
        valid = np.isfinite(depth)
        np.testing.assert_allclose(xyz[..., 2][valid], depth[valid], rtol=1e-6)
        np.testing.assert_allclose(xyz[..., 0][valid],
                                   ((u - own[0, 2]) / own[0, 0] * depth)[valid],
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(xyz[..., 1][valid],
                                   ((v - own[1, 2]) / own[1, 1] * depth)[valid],
                                   rtol=1e-4, atol=1e-5)


def broken(message):
    """The same Image with its pixel data cut short: undecodable."""
    message = copy.copy(message)
    message.data = message.data[:10]
    return message


def test_a_bag_whose_every_image_is_skipped_fails_naming_it_and_writes_nothing(
        tmp_path, capsys, drive, checkpoint):
    K, frames = drive
    # Fewer images than SkippedImages' limit (10), so reading never stops on its own.
    messages = camera_messages(frames, lambda rgb: rgb,
                               lambda header: msgs.camera_info(K, *SENSOR, header), depth=True)
    all_broken = write_bag(tmp_path / 'all_broken', [
        (topic, kind, broken(message) if topic == IMAGE_TOPIC else message, time_ns)
        for topic, kind, message, time_ns in messages])
    # Valid images, but each half the size its camera_info (no binning) describes.
    mismatched = camera_bag(tmp_path / 'mismatched', frames,
                            lambda rgb: np.ascontiguousarray(rgb[::2, ::2]),
                            lambda header: msgs.camera_info(K, *SENSOR, header))
    for bag, problem in ((all_broken, 'data'),
                         (mismatched, 'camera_info describes a 128x64 image but the image is '
                                      '64x32')):
        out = tmp_path / f'{bag.name}_depth'
        code, stdout, err = infer(capsys, checkpoint, bag, out)
        lines = err.strip().splitlines()
        assert code == 1 and 'Traceback' not in err
        assert lines[-1].startswith(f'hybrid-depth infer: error: bag {bag}: no depth on '
                                    f'{IMAGE_TOPIC}: all {FRAMES} images were skipped (the '
                                    f'first: image at ')
        assert problem in lines[-1] and f'nothing written to {out}' in lines[-1]
        assert not out.exists() and not list(tmp_path.glob(f'.{out.name}.partial-*'))
        assert 'wrote' not in stdout
    # evaluate: the same bag is said to have nothing to score, not "no depth paired"
    code = cli.main(['evaluate', '--checkpoint', str(checkpoint), '--bag', str(all_broken),
                     '--gt-depth-topic', DEPTH_GT_TOPIC, '--device', 'cpu'])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert err.startswith(f'hybrid-depth evaluate: error: bag {all_broken}: '
                          f'nothing to evaluate: all {FRAMES} images on {IMAGE_TOPIC} could not '
                          f'be decoded (the first: image at ')


@pytest.mark.parametrize('namespace, problem', [
    ('/my cam', "its token 'my cam' has characters other than letters, digits and '_'"),
    ('/robot1/2nd', "its token '2nd' starts with a digit"),
    ('/robot1//front', "it has '//' (an empty token)"),
    ('/front-left', "its token 'front-left' has characters other than letters, digits and '_'"),
    ('~/cam', "'~' (a node's private namespace) cannot be a namespace"),
])
def test_a_namespace_that_is_no_ros_name_is_refused_before_any_work(tmp_path, capsys, namespace,
                                                                    problem):
    out = tmp_path / 'depth'
    # Neither checkpoint nor bag exists: the name is refused before either is opened.
    code, _, err = infer(capsys, tmp_path / 'none.pt', tmp_path / 'no_bag', out, '--namespace',
                         namespace)
    assert code == 1 and not out.exists()
    assert err == (f'hybrid-depth infer: error: --namespace {namespace!r} is not a valid ROS 2 '
                   f'namespace: {problem}; {NAME_RULE}\n')


@pytest.mark.parametrize('namespace, topic', [('/robot1/front', '/robot1/front/depth/image'),
                                              ('robot1/front/', '/robot1/front/depth/image'),
                                              ('/', '/depth/image')])
def test_valid_namespaces_name_the_output_topics(tmp_path, capsys, drive, checkpoint, namespace,
                                                 topic):
    K, frames = drive
    bag = camera_bag(tmp_path / 'bag', frames[:1], lambda rgb: rgb,
                     lambda header: msgs.camera_info(K, *SENSOR, header))
    code, out, err = infer(capsys, checkpoint, bag, tmp_path / 'depth', '--namespace', namespace)
    assert code == 0, err
    prefix = topic.removesuffix('depth/image')
    assert set(read_topics(tmp_path / 'depth')) == {
        IMAGE_TOPIC, CAMERA_INFO_TOPIC, topic, f'{prefix}depth/camera_info',
        f'{prefix}depth/points'}


def test_the_name_rule_is_rcls():
    """name_problem agrees with rclpy's validators (rcl's and rmw's rules) wherever both
    judge a name."""
    rclpy_names = pytest.importorskip('rclpy.validate_namespace')
    from rclpy.exceptions import InvalidNamespaceException, InvalidTopicNameException
    from rclpy.validate_full_topic_name import validate_full_topic_name

    names = ['/', '/a', '/robot1/front', '/_x/y2', '/my cam', '/1a', '/a//b', '/a/', '//',
             '/é', '/a-b', '/a.b', '/A/B_c9']
    for name in names:
        try:
            rclpy_names.validate_namespace(name)
            valid = True
        except InvalidNamespaceException:
            valid = False
        assert (name_problem(name, namespace=True) is None) == valid, name
        if name != '/':  # a topic, unlike a namespace, cannot be the root
            try:
                validate_full_topic_name(name)
                valid = True
            except InvalidTopicNameException:
                valid = False
            assert (name_problem(name) is None) == valid, name
    # relative and private topic names (remap targets), which rclpy expands first
    for name in ('image_raw', 'cam/image', '~', '~/image'):
        assert check_topic_name(name, '--image') == name
    for name, problem in (('~image', "'~' must stand alone"), ('cam/', "ends with '/'"),
                          ('', 'empty'), ('a b', "token 'a b'")):
        expected = re.escape(f'--image {name!r} is not a valid ROS 2 topic name: ')
        with pytest.raises(UserError, match=expected + '.*' + re.escape(problem)):
            check_topic_name(name, '--image')
    assert fully_qualified_namespace('', '--namespace') == ''  # the root


def test_the_node_command_refuses_a_topic_that_is_no_ros_name(capsys):
    """Refused before rclpy starts, with the rule (rcl's own error names none)."""
    assert cli.main(['node', '--image', '/my cam']) == 1
    error = capsys.readouterr().err
    assert error.startswith("hybrid-depth node: error: --image '/my cam' is not a valid ROS 2 "
                            "topic name")
