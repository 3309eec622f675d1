"""Depth, pose and multi-frame networks: shapes, gradients, naming, the cost volume's geometry."""
import os

import pytest
import torch

from hybrid_depth_core.geometry import pose_vector_to_matrix
from hybrid_depth_core.networks import build_depth_model, build_pose_model, disp_to_depth
from hybrid_depth_core.networks.cost_volume import CostVolume
from hybrid_depth_core.networks.encoders import ResNet18Encoder

ARCHS = ['hybrid', 'resnet18']


def intrinsics(width, height, batch=1):
    K = torch.tensor([[0.58 * width, 0, 0.52 * width], [0, 1.92 * height, 0.47 * height],
                      [0, 0, 1]])
    return K.expand(batch, 3, 3).clone()


def sideways(batch, metres=0.3):
    T = torch.eye(4).repeat(batch, 1, 1)
    T[:, 0, 3] = -metres
    return T


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('multi_frame', [False, True])
@pytest.mark.parametrize('height, width, batch', [(192, 640, 1), (96, 320, 2), (256, 256, 1)])
def test_output_shapes(arch, multi_frame, height, width, batch):
    model = build_depth_model(arch, multi_frame=multi_frame).eval()
    image = torch.rand(batch, 3, height, width)
    lookup = torch.rand(batch, 3, height, width) if multi_frame else None
    with torch.no_grad():
        half, quarter = model.encoder(image)
        features = [half, quarter] + model.encoder.deep_features(quarter)
        output = model(image, lookup, intrinsics(width, height, batch), sideways(batch))
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, height // s, width // s) for c, s in zip((64, 64, 128, 256, 512), (2, 4, 8, 16, 32))]
    assert [tuple(d.shape) for d in output.disparities] == [
        (batch, 1, height // 2 ** s, width // 2 ** s) for s in range(4)]
    assert (output.matching is not None) == multi_frame
    if multi_frame:
        assert output.matching.cost.shape == (batch, 96, height // 4, width // 4)


@pytest.mark.parametrize('arch', ARCHS)
def test_multi_frame_model_runs_without_a_previous_frame_or_with_a_blank_one(arch):
    model = build_depth_model(arch, multi_frame=True).eval()
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        alone = model(image)
        blank = model(image, torch.zeros_like(image), intrinsics(96, 64), sideways(1))
    with torch.no_grad():  # a small motion keeps every hypothesis inside the lookup image
        matched = model(image, torch.rand_like(image), intrinsics(96, 64), sideways(1, 0.01))
    assert matched.matching.confidence.mean() > 0.5
    for output in (alone, blank, matched):
        assert torch.isfinite(output.disparities[0]).all()
    # The previous frame really enters the prediction.
    assert not torch.allclose(alone.disparities[0], matched.disparities[0])


@pytest.mark.parametrize('height, width', [(100, 96), (32, 96)])
def test_input_size_must_be_a_multiple_of_32_and_at_least_64(height, width):
    with pytest.raises(ValueError, match='multiples of 32, at least 64'):
        build_depth_model('hybrid')(torch.rand(1, 3, height, width))


def test_unknown_architecture_is_named_in_the_error():
    with pytest.raises(ValueError, match="'vit'"):
        build_depth_model('vit')


def _assert_every_parameter_gets_a_gradient(model):
    missing = [name for name, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f'no gradient reaches: {missing[:10]}'


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('multi_frame', [False, True])
def test_gradients_reach_every_depth_parameter(arch, multi_frame):
    torch.manual_seed(0)
    model = build_depth_model(arch, multi_frame=multi_frame).train()
    image = torch.rand(2, 3, 64, 64)
    lookup = torch.rand(2, 3, 64, 64) if multi_frame else None
    output = model(image, lookup, intrinsics(64, 64, 2), sideways(2))
    sum(d.mean() for d in output.disparities).backward()
    _assert_every_parameter_gets_a_gradient(model)


def test_gradients_reach_every_pose_parameter_and_pose_is_rigid():
    torch.manual_seed(0)
    model = build_pose_model().train()
    T = model(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    assert T.shape == (2, 4, 4)
    R = T[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5,
                               rtol=0)
    torch.testing.assert_close(T[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(2, 4))
    (T[:, :3, :3].sum() + T[:, :3, 3].sum()).backward()
    _assert_every_parameter_gets_a_gradient(model)


def test_disp_to_depth_spans_the_range_linearly_in_inverse_depth():
    depth = disp_to_depth(torch.tensor([0.0, 0.5, 1.0]), 0.1, 100.0)
    torch.testing.assert_close(depth, torch.tensor([100.0, 1 / (0.01 + 0.5 * 9.99), 0.1]))


@pytest.mark.parametrize('arch', ARCHS)
def test_untrained_networks_start_at_the_initial_depth_and_the_given_motion(arch):
    """Training starts from the initial depth and a camera standing still, or moving along the
    heading the data shows (`start_moving`; DepthModelConfig.initial_depth, networks/pose.py and
    training/defaults.pose_prior say why)."""
    torch.manual_seed(0)
    model = build_depth_model(arch, initial_depth=7.0).eval()
    with torch.no_grad():
        disparity = model(torch.rand(2, 3, 64, 96)).disparities[0]
    depth = disp_to_depth(disparity, model.config.min_depth, model.config.max_depth)
    assert depth.median().item() == pytest.approx(7.0, rel=0.2)
    pose = build_pose_model().eval()
    frames = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        T = pose(*frames)
        assert torch.allclose(T[:, :3, 3], torch.zeros(3), atol=0.02)
        assert torch.allclose(T[:, :3, :3], torch.eye(3), atol=1e-3)
        pose.decoder.start_moving((0.3, 0.0, -0.4))
        T = pose(*frames)
    assert torch.allclose(T[:, :3, 3], torch.tensor([0.3, 0.0, -0.4]), atol=0.02)
    with pytest.raises(ValueError, match='initial_depth must lie in'):
        build_depth_model(arch, initial_depth=500.0)


def test_cost_volume_minimum_is_at_the_true_depth_of_a_plane():
    """A textured fronto-parallel plane at depth d seen by a camera moved sideways by b shifts
    by f*b/d pixels; the cost must be lowest at the hypothesis nearest d. (Depths are chosen
    where neighbouring hypotheses move the match by a resolvable fraction of a pixel.)"""
    torch.manual_seed(0)
    height, width, focal, baseline = 24, 80, 50.0, 0.8
    volume = CostVolume(channels=16, num_bins=96, min_depth=2.0, max_depth=20.0)
    bins = volume.depth_bins()
    K = torch.tensor([[[focal, 0, 39.3], [0, focal, 11.6], [0, 0, 1]]])
    T = sideways(1, baseline)  # lookup camera 0.8 m to the right: X_lookup = X - b
    for depth in (4.0, 5.0, 8.0, 10.0):  # shifts of 10, 8, 5 and 4 pixels
        texture = torch.nn.functional.avg_pool2d(torch.randn(1, 16, height, 3 * width), 3, 1, 1)
        current = texture[..., width:2 * width]
        shift = focal * baseline / depth  # pixels, possibly fractional
        u = torch.arange(width) + shift + width  # lookup(x) = current(x + shift)
        frac = u - u.floor()
        lookup = (texture[..., u.floor().long()] * (1 - frac)
                  + texture[..., u.floor().long() + 1] * frac)
        _, matching = volume(current, lookup, K, T)
        argmin = matching.cost.argmin(1)[0]
        confident = matching.confidence[0, 0] > 0
        assert confident.float().mean() > 0.5
        nearest = (bins - depth).abs().argmin()
        agree = (argmin[confident] - nearest).abs() <= 1
        assert agree.float().mean() > 0.95, f'depth {depth}: {agree.float().mean():.2f}'
        torch.testing.assert_close(matching.argmin_depth[0, 0][confident].median(),
                                   bins[nearest], atol=0.25, rtol=0)


def test_sweep_coordinates_match_backproject_and_project_under_general_motion():
    from hybrid_depth_core import geometry
    from hybrid_depth_core.networks.cost_volume import sweep_coordinates
    K = torch.tensor([[[60.0, 0, 40.3], [0, 55, 11.8], [0, 0, 1]]], dtype=torch.float64)
    T = geometry.pose_vector_to_matrix(torch.tensor([[0.02, -0.05, 0.01]], dtype=torch.float64),
                                       torch.tensor([[0.1, -0.05, -0.9]], dtype=torch.float64))
    depths = torch.tensor([2.0, 7.5, 30.0], dtype=torch.float64)
    u, v, z = sweep_coordinates(K, T, depths, 24, 80)
    for i, depth in enumerate(depths):
        points = geometry.backproject(torch.full((1, 1, 24, 80), float(depth),
                                                 dtype=torch.float64), torch.linalg.inv(K))
        pixels, expected_z = geometry.project(points, K, T)
        torch.testing.assert_close(u[:, i], pixels[:, 0])
        torch.testing.assert_close(v[:, i], pixels[:, 1])
        torch.testing.assert_close(z[:, i], expected_z)


def test_cpu_forward_at_kitti_size():
    model = build_depth_model('hybrid', multi_frame=True).eval()
    image = torch.rand(1, 3, 192, 640)
    with torch.no_grad():
        output = model(image, image, intrinsics(640, 192), torch.eye(4)[None])
    assert output.disparities[0].shape == (1, 1, 192, 640)


def test_models_do_not_fix_device_or_batch_size():
    model = build_depth_model('resnet18').eval()
    assert all(p.device.type == 'cpu' for p in model.parameters())
    with torch.no_grad():
        for batch in (1, 3):
            assert model(torch.rand(batch, 3, 64, 96)).disparities[0].shape[0] == batch
    assert isinstance(model.encoder, ResNet18Encoder)


def test_depth_bin_range_is_saved_with_the_model_and_updatable():
    model = build_depth_model('hybrid', multi_frame=True, min_depth_bin=0.5, max_depth_bin=30.0)
    state = model.state_dict()
    torch.testing.assert_close(state['cost_volume.depth_range'], torch.tensor([0.5, 30.0]))
    model.cost_volume.depth_range.copy_(torch.tensor([1.0, 11.0]))  # what training adapts
    restored = build_depth_model('hybrid', multi_frame=True)
    restored.load_state_dict(model.state_dict())
    bins = restored.cost_volume.depth_bins()
    assert len(bins) == 96 and bins[0] == 1.0 and bins[-1] == 11.0
    assert torch.allclose(bins.diff(), torch.full((95,), 10 / 95))  # linear in depth


def test_fused_plane_sweep_kernel_equals_the_pytorch_path():
    from hybrid_depth_core.networks import plane_sweep
    from hybrid_depth_core.networks.cost_volume import sweep_coordinates
    if plane_sweep.fused_kernel() is None:
        # CI has the toolchain, so there the kernel must build; elsewhere it may be missing.
        assert not os.environ.get('CI'), plane_sweep._kernel_error
        pytest.skip(f'no C++ toolchain: {plane_sweep._kernel_error}')
    torch.manual_seed(0)
    current, lookup = torch.rand(2, 64, 12, 20), torch.rand(2, 64, 12, 20)
    K = torch.tensor([[10.0, 0, 10], [0, 10, 6], [0, 0, 1]]).expand(2, 3, 3)
    T = torch.stack([pose_vector_to_matrix(torch.tensor([[0.02, -0.1, 0.03]]),
                                           torch.tensor([[0.3, -0.1, -0.8]]))[0],
                     torch.eye(4)])
    # Hypotheses from behind the camera to far: samples inside, on the border and outside.
    u, v, _ = sweep_coordinates(K, T, torch.linspace(-1.0, 30.0, 40), 12, 20)
    fused = plane_sweep.fused_cost(plane_sweep.fused_kernel(), current, lookup, u, v)
    reference = plane_sweep.torch_cost(current, lookup, u, v)
    assert ((u < 0) | (u > 19)).any() and ((u >= 0) & (u <= 19)).any()
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(plane_sweep.matching_cost(current, lookup, u, v), fused)
    # Training: the kernel's gradient for the current features is autograd's of the PyTorch
    # path, with hypotheses masked as the cost volume masks them (zero upstream gradient).
    upstream = torch.rand(fused.shape) * (torch.rand(fused.shape) > 0.3)
    gradients = []
    for cost in (plane_sweep.fused_cost, lambda kernel, *inputs: plane_sweep.torch_cost(*inputs)):
        features = current.clone().requires_grad_()
        (cost(plane_sweep.fused_kernel(), features, lookup, u, v) * upstream).sum().backward()
        gradients.append(features.grad)
    assert gradients[0].abs().sum() > 0
    torch.testing.assert_close(gradients[0], gradients[1], atol=1e-6, rtol=1e-5)
    # Lookup features that need a gradient (not ManyDepth's) take the PyTorch path.
    lookup.requires_grad_()
    plane_sweep.matching_cost(current, lookup, u, v).sum().backward()
    assert lookup.grad is not None and lookup.grad.abs().sum() > 0
