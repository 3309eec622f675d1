"""Losses: analytic values, gradients, and the photometric loss on exact synthetic geometry."""
import numpy as np
import pytest
import torch

from hybrid_depth_core.training import losses
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.geometry import warp


def test_ssim_of_an_image_with_itself_is_one_and_lower_otherwise():
    image = torch.rand(2, 3, 16, 20)
    torch.testing.assert_close(losses.ssim(image, image), torch.ones_like(image))
    assert losses.ssim(image, torch.rand_like(image)).mean() < 0.5
    assert losses.photometric_error(image, image).abs().max() < 1e-6


def test_ssim_under_bf16_autocast_is_the_fp32_ssim():
    # Training runs the objective under autocast (bf16 on CUDA); SSIM must not follow it.
    generator = torch.Generator().manual_seed(0)
    x = 0.5 + 0.05 * torch.rand(2, 3, 24, 32, generator=generator)  # low contrast: E[x^2] ~ E[x]^2
    y = x + 0.01 * torch.rand(2, 3, 24, 32, generator=generator)
    reference = losses.ssim(x, y)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        autocast = losses.ssim(x, y)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, reference)


@pytest.mark.parametrize('name', ['photometric', 'smoothness', 'consistency'])
def test_loss_gradients_in_float64(name):
    torch.manual_seed(0)
    a = torch.rand(1, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 3, 6, 7, dtype=torch.float64)
    disparity = (0.1 + torch.rand(1, 1, 6, 7, dtype=torch.float64)).requires_grad_()
    mask = (torch.rand(1, 1, 6, 7) > 0.5).double()
    functions = {
        'photometric': (lambda x: losses.photometric_error(x, b), (a,)),
        'smoothness': (lambda d: losses.smoothness_loss(d, b), (disparity,)),
        'consistency': (lambda d: losses.consistency_loss(d, 2 * torch.ones_like(d), mask),
                        (disparity,)),
    }
    function, inputs = functions[name]
    assert torch.autograd.gradcheck(function, inputs)


def test_consistency_loss_is_relative_so_any_depth_scale_weighs_the_same():
    depth, teacher = torch.tensor([[[[2.0, 6.0]]]]), torch.tensor([[[[4.0, 3.0]]]])
    mask = torch.ones_like(depth)
    assert losses.consistency_loss(depth, teacher, mask).item() == pytest.approx((0.5 + 1) / 2)
    assert losses.consistency_loss(10 * depth, 10 * teacher, mask).item() == pytest.approx(0.75)
    # ManyDepth's absolute difference, in depth units, and only on the mask (mean over all)
    assert losses.consistency_loss(depth, teacher, mask, relative=False).item() == 2.5
    assert losses.consistency_loss(depth, teacher, torch.tensor([[[[0.0, 1.0]]]]),
                                   relative=False).item() == 1.5


def test_automasking_drops_pixels_that_match_without_warping():
    target = torch.rand(1, 3, 8, 8)
    still = target.clone()                 # a source identical to the target (static camera)
    wrong = torch.rand(1, 3, 8, 8)         # a bad warp
    reprojection = losses.reprojection_loss([wrong], target)
    assert losses.automask(reprojection, losses.identity_error([still], target)).sum() == 0
    reprojection = losses.reprojection_loss([target], target)
    assert reprojection.max() < 1e-3
    assert losses.automask(reprojection, losses.identity_error([wrong], target)).mean() == 1


def test_reprojection_takes_the_better_source_and_masked_mean_the_mask():
    target = torch.zeros(1, 3, 4, 4)
    near, far = torch.full_like(target, 0.1), torch.full_like(target, 0.5)
    near[..., :2] = 0.9                     # the left half matches the far source better
    per_pixel = losses.reprojection_loss([near, far], target)
    expected = losses.photometric_error(far, target)[..., :2]
    torch.testing.assert_close(per_pixel[..., :2], expected)
    torch.testing.assert_close(per_pixel[..., 2:], losses.photometric_error(near, target)[..., 2:])
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    torch.testing.assert_close(losses.masked_mean(per_pixel, mask), expected.mean(),
                               rtol=1e-5, atol=1e-6)
    assert losses.masked_mean(per_pixel, torch.zeros_like(mask)) == 0


def test_reliable_matching_by_hand():
    argmin = torch.tensor([[[[1.0, 4.0, 10.0, 3.0, 5.9]]]])
    teacher = torch.tensor([[[[1.5, 1.0, 4.0, 3.0, 3.0]]]])
    confidence = torch.tensor([[[[1.0, 1.0, 1.0, 0.0, 1.0]]]])
    # ratios 1.5 (ok), 4 (> 2), 2.5 (> 2); no confident matching; 1.97 (ok)
    assert losses.reliable_matching(argmin, confidence, teacher).flatten().tolist() == [
        1, 0, 0, 0, 1]


def test_depth_range_update_is_the_per_image_mean_rule():
    # two images: per-image min 2 and 6, max 10 and 30
    teacher = torch.tensor([[[[2.0, 10.0]]], [[[6.0, 30.0]]]])
    updated = losses.updated_depth_range(torch.tensor([0.5, 20.0]), teacher, min_depth=0.1)
    low, high = 0.9 * (2 + 6) / 2, 1.1 * (10 + 30) / 2   # not the batch's 0.9 x 2, 1.1 x 30
    torch.testing.assert_close(updated, torch.tensor([0.99 * 0.5 + 0.01 * low,
                                                      0.99 * 20 + 0.01 * high]))
    # the min never goes below min_depth
    near = torch.tensor([[[[0.05, 4.0]]], [[[0.07, 8.0]]]])
    updated = losses.updated_depth_range(torch.tensor([0.1, 20.0]), near, min_depth=0.1)
    torch.testing.assert_close(updated[0], torch.tensor(0.1))


@pytest.fixture(scope='module')
def synthetic_pair():
    drive = SyntheticDrive(DriveConfig(width=320, height=96, frames=2, seed=11))
    source, target = drive.render(0), drive.render(1)

    def tensor(rgb):
        return torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255
    depth = torch.from_numpy(np.nan_to_num(target.depth, nan=1e4))[None, None]
    T = torch.from_numpy(np.linalg.inv(source.T_world_cam) @ target.T_world_cam).float()[None]
    K = torch.from_numpy(drive.camera.K).float()[None]
    return tensor(source.rgb), tensor(target.rgb), depth, T, K


def test_photometric_loss_is_near_its_floor_with_true_depth_and_pose(synthetic_pair):
    source, target, depth, T, K = synthetic_pair
    inv_K = torch.linalg.inv(K)

    def loss(d):
        reprojection = losses.reprojection_loss([warp(source, d, T, K, inv_K)], target)
        kept = losses.automask(reprojection, losses.identity_error([source], target))
        return losses.masked_mean(reprojection, kept).item()  # the training loss
    true, scaled, flat = loss(depth), loss(depth * 1.5), loss(torch.full_like(depth, 10.0))
    print(f'photometric loss: true depth {true:.4f}, x1.5 {scaled:.4f}, constant {flat:.4f}')
    assert true < 0.03
    assert true < 0.6 * scaled and true < 0.6 * flat
