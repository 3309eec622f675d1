"""KITTI raw layout and image-folder datasets, on small fixtures written by the tests."""
import cv2
import numpy as np
import pytest
import yaml

from hybrid_depth_core.datasets.sources import DataConfig, build_dataset
from hybrid_depth_core.datasets.image_folder import ImageFolderDataset, read_intrinsics
from hybrid_depth_core.datasets.kitti import KittiCalibration, KittiRawDataset, read_split
from hybrid_depth_core.evaluation.drivers import evaluate_kitti
from hybrid_depth_core.evaluation.metrics import Protocol, evaluate_image
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.errors import UserError

DATE, DRIVE = '2011_09_26', '2011_09_26_drive_0001_sync'
# Velodyne axes (x forward, y left, z up) -> camera axes (x right, y down, z forward).
VELO_TO_CAM = np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])


@pytest.fixture(scope='module')
def drive():
    return SyntheticDrive(DriveConfig(width=310, height=94, frames=5, seed=21))


def velodyne_points_for(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Points that KITTI's (1-based) projection puts at each valid pixel with that depth."""
    v, u = np.nonzero(np.isfinite(depth))
    z = depth[v, u].astype(np.float64)
    camera = np.stack([(u + 1 - K[0, 2]) / K[0, 0] * z, (v + 1 - K[1, 2]) / K[1, 1] * z, z], 1)
    velo = camera @ VELO_TO_CAM  # inverse rotation: cam = R velo -> velo = R^T cam
    return np.hstack([velo, np.ones((len(z), 1))]).astype(np.float32)


@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory, drive):
    root = tmp_path_factory.mktemp('kitti')
    date = root / DATE
    images = date / DRIVE / 'image_02' / 'data'
    scans = date / DRIVE / 'velodyne_points' / 'data'
    images.mkdir(parents=True)
    scans.mkdir(parents=True)
    K = drive.camera.K
    P = np.hstack([K, np.zeros((3, 1))])
    (date / 'calib_cam_to_cam.txt').write_text(
        'calib_time: 09-Jan-2012 13:57:47\n'
        f'S_rect_02: {drive.camera.width:.6e} {drive.camera.height:.6e}\n'
        f'R_rect_00: {" ".join(map(str, np.eye(3).ravel()))}\n'
        f'P_rect_02: {" ".join(map(str, P.ravel()))}\n')
    (date / 'calib_velo_to_cam.txt').write_text(
        f'R: {" ".join(map(str, VELO_TO_CAM.ravel()))}\nT: 0 0 0\n')
    for frame in drive:
        cv2.imwrite(str(images / f'{frame.index:010d}.png'), frame.rgb[..., ::-1])
        velodyne_points_for(frame.depth, K).tofile(scans / f'{frame.index:010d}.bin')
    split = root / 'split.txt'
    split.write_text(f'{DATE}/{DRIVE} 1 l\n{DATE}/{DRIVE} 2 l\n')
    return root, split


def test_velodyne_ground_truth_lands_where_kitti_puts_it(kitti_root, drive):
    root, _ = kitti_root
    calibration = KittiCalibration(root / DATE, '02')
    np.testing.assert_allclose(calibration.K, drive.camera.K)
    gt = calibration.depth_map(np.fromfile(
        root / DATE / DRIVE / 'velodyne_points' / 'data' / '0000000001.bin',
        np.float32).reshape(-1, 4))
    expected = drive.render(1).depth
    np.testing.assert_allclose(gt, expected, rtol=1e-5)  # NaN (sky) in the same places


def test_nearest_point_wins_and_points_behind_are_dropped(kitti_root):
    root, _ = kitti_root
    calibration = KittiCalibration(root / DATE, '02')
    K = calibration.K

    def point(u: float, v: float, depth: float) -> np.ndarray:
        """The Velodyne point at `depth` that projects to image coordinates (u, v)."""
        ray = np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
        return np.r_[(depth * ray) @ VELO_TO_CAM, 1]
    # The KITTI devkit's and Monodepth2's generate_depth_map: round the projection, then
    # subtract 1 (1-based calibration). So (11.4, 20.6) -> (11, 21) -> pixel (10, 20), and
    # (31.6, 40.4) -> (32, 40) -> pixel (31, 39); written out here, not taken from the code.
    points = [point(11.4, 20.6, d) for d in (5.0, 3.0, 8.0)] + [point(31.6, 40.4, 7.0)]
    points.append(-point(11.4, 20.6, 4.0) * [1, 1, 1, -1])  # behind the scanner (x < 0)
    points.append(point(0.4, 5.0, 6.0))  # rounds to column 0 -> -1: outside the image
    gt = calibration.depth_map(np.array(points, np.float32))
    assert gt[20, 10] == pytest.approx(3.0) and gt[39, 31] == pytest.approx(7.0)
    assert np.isfinite(gt).sum() == 2


def test_kitti_samples_follow_the_contract(kitti_root, drive):
    root, split = kitti_root
    config = DataConfig(source='kitti', root=str(root), split=str(split), width=128, height=64)
    dataset = build_dataset(config, augment=None, seed=0)
    assert len(dataset) == 2
    sample = dataset[0]
    assert sample[('color', -1, 0)].shape == (3, 64, 128)
    assert sample[('color', 0, 3)].shape == (3, 8, 16)
    # Only what training reads: every frame at full size (raw and jittered), the current
    # frame's smaller scales (smoothness), full-size intrinsics.
    assert set(sample) == ({(kind, f, 0) for kind in ('color', 'color_aug') for f in (-1, 0, 1)}
                           | {('color', 0, s) for s in (1, 2, 3)} | {('K', 0), ('inv_K', 0)})
    K = drive.camera.K
    sx, sy = 128 / 310, 64 / 94
    np.testing.assert_allclose(sample[('K', 0)].numpy(), [
        [K[0, 0] * sx, 0, (K[0, 2] + 0.5) * sx - 0.5],
        [0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5], [0, 0, 1]], rtol=1e-5)


def test_kitti_eigen_evaluation_crops_and_median_scales(kitti_root, drive):
    """A prediction at half the true depth inside Garg's crop and far off outside it scores
    exactly 0 only if the crop (Monodepth2's fractions, written out here) is applied and the
    median scaling recovers the factor 2."""
    root, split = kitti_root
    depths = {frame.index: frame.depth for frame in drive}
    frames = list(drive)
    height, width = frames[0].depth.shape
    crop = np.zeros((height, width), bool)
    crop[int(0.40810811 * height):int(0.99189189 * height),
         int(0.03594771 * width):int(0.96405229 * width)] = True
    calls = []

    def half_inside_the_crop(rgb, K, previous):
        calls.append(previous is not None)
        index = next(i for i, f in enumerate(frames) if np.array_equal(f.rgb, rgb))
        truth = np.nan_to_num(depths[index], nan=100.0)
        return np.where(crop, truth / 2, truth * 7)
    result = evaluate_kitti(half_inside_the_crop, root, split, progress=False)
    assert result['images'] == 2 and calls == [True, True]
    assert result['abs_rel'] < 1e-6 and result['a1'] == 1.0
    assert result['scale_median'] == pytest.approx(2.0)
    # Without the crop the same prediction is far off: the test can tell the difference.
    scores = [evaluate_image(half_inside_the_crop(f.rgb, None, None),
                             f.depth, Protocol())[0]['abs_rel'] for f in frames]
    assert min(scores) > 0.1


def test_bad_kitti_inputs_are_named(kitti_root, tmp_path):
    root, _ = kitti_root
    bad = tmp_path / 'bad.txt'
    bad.write_text(f'{DATE}/{DRIVE} one l\n')
    with pytest.raises(UserError, match='bad.txt:1: expected'):
        read_split(bad)
    missing = tmp_path / 'missing.txt'
    missing.write_text(f'{DATE}/{DRIVE} 40 l\n')
    with pytest.raises(UserError, match='0000000039.png'):
        KittiRawDataset(root, missing, 64, 64)[0]
    with pytest.raises(UserError, match='needs data.split'):
        build_dataset(DataConfig(source='kitti', root=str(root)), None, 0)


def assert_stride_two_takes_frames_two_apart(one, two):
    """Stride 2's first sample (frames 0, 2, 4) = frames of stride 1's samples centred on 1,
    2 and 3 (-1, 0 and +1 respectively)."""
    assert len(two) == len(one) - 2
    for sign, item in ((-1, 0), (0, 1), (1, 2)):
        assert np.array_equal(two[0][('color', sign, 0)], one[item][('color', sign, 0)])


def test_frame_stride_applies_to_synthetic_folder_and_kitti(tmp_path, kitti_root):
    def dataset(stride, **fields):
        return build_dataset(DataConfig(width=96, height=64, frame_stride=stride, **fields),
                             None, 0, progress=False)
    assert_stride_two_takes_frames_two_apart(
        dataset(1, seeds=(5,), frames_per_drive=6), dataset(2, seeds=(5,), frames_per_drive=6))
    five = SyntheticDrive(DriveConfig(width=96, height=64, frames=5, seed=8))
    K = five.camera.K
    folder, path = write_folder(tmp_path, five, dict(
        fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]), width=96,
        height=64), frames=5)
    fields = dict(source='folder', root=str(folder), intrinsics=str(path))
    assert_stride_two_takes_frames_two_apart(dataset(1, **fields), dataset(2, **fields))
    with pytest.raises(UserError, match='frame_stride 3 needs at least 7'):
        dataset(3, **fields)
    root, _ = kitti_root  # frames 0-4
    split = tmp_path / 'split.txt'
    split.write_text(''.join(f'{DATE}/{DRIVE} {index} l\n' for index in (1, 2, 3)))
    kitti = {stride: dataset(stride, source='kitti', root=str(root), split=str(split))
             for stride in (1, 2)}  # stride 2 keeps frame 2 alone: 1 and 3 lack a neighbour
    assert_stride_two_takes_frames_two_apart(kitti[1], kitti[2])
    with pytest.raises(UserError, match='no frame of .* has frames t-3 and t\\+3'):
        dataset(3, source='kitti', root=str(root), split=str(split))


def write_folder(tmp_path, drive, intrinsics: dict, frames=4):
    folder = tmp_path / 'images'
    folder.mkdir(parents=True)
    for frame in list(drive)[:frames]:
        cv2.imwrite(str(folder / f'frame_{frame.index:04d}.jpg'), frame.rgb[..., ::-1])
    path = tmp_path / 'camera.yaml'
    path.write_text(yaml.safe_dump(intrinsics))
    return folder, path


def test_folder_dataset_with_simple_and_ros_intrinsics(tmp_path, drive):
    K = drive.camera.K
    simple = dict(fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]), cy=float(K[1, 2]),
                  width=310, height=94)
    ros = {'image_width': 310, 'image_height': 94, 'distortion_model': 'plumb_bob',
           'camera_matrix': {'rows': 3, 'cols': 3, 'data': K.ravel().tolist()},
           'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [0.0] * 5}}
    for name, intrinsics in (('simple', simple), ('ros', ros)):
        folder, path = write_folder(tmp_path / name, drive, intrinsics)
        camera, rectify = read_intrinsics(path)
        np.testing.assert_allclose(camera.K, K)
        assert rectify is None  # zero distortion: nothing to undo
        dataset = ImageFolderDataset(folder, path, 160, 64)
        assert len(dataset) == 2
        sample = dataset[1]
        assert sample[('color', 0, 0)].shape == (3, 64, 160)
        assert sample[('K', 0)][0, 0].item() == pytest.approx(K[0, 0] * 160 / 310, rel=1e-5)


def test_folder_dataset_undistorts_and_rejects_bad_input(tmp_path, drive):
    K = drive.camera.K
    intrinsics = dict(fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]),
                      cy=float(K[1, 2]), width=310, height=94, distortion=[0.1, 0, 0, 0, 0])
    folder, path = write_folder(tmp_path / 'distorted', drive, intrinsics)
    raw = cv2.imread(str(sorted(folder.iterdir())[0]))[..., ::-1]
    _, rectify = read_intrinsics(path)
    undistorted = rectify(raw)
    # OpenCV's own undistortion of the same image (K kept), to within interpolation rounding
    reference = cv2.undistort(raw, K, np.array([0.1, 0, 0, 0, 0]))
    assert undistorted.shape == raw.shape and not np.array_equal(undistorted, raw)
    assert np.abs(undistorted.astype(int) - reference).max() <= 2
    folder, path = write_folder(tmp_path / 'short', drive, intrinsics, frames=2)
    with pytest.raises(UserError, match='needs at least 3'):
        ImageFolderDataset(folder, path, 64, 64)
    wrong = dict(intrinsics, width=320)
    folder, path = write_folder(tmp_path / 'wrong', drive, wrong)
    with pytest.raises(UserError, match='describe 320x94'):
        ImageFolderDataset(folder, path, 64, 64)[0]
    broken = tmp_path / 'broken.yaml'
    broken.write_text('fx: 1\n')
    with pytest.raises(UserError, match='missing or malformed'):
        read_intrinsics(broken)
