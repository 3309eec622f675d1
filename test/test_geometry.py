"""Geometry functions: analytic cases, round trips, gradients."""
import math

import torch

from hybrid_depth_core import geometry


def test_axis_angle_quarter_turn_about_z():
    R = geometry.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(R, expected, atol=1e-12, rtol=0)


def test_axis_angle_is_a_rotation_and_identity_at_zero():
    vectors = torch.randn(16, 3, dtype=torch.float64)
    R = geometry.axis_angle_to_matrix(vectors)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(
        16, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(16, dtype=torch.float64))
    torch.testing.assert_close(geometry.axis_angle_to_matrix(torch.zeros(3)), torch.eye(3))


def test_axis_angle_gradients_are_correct_including_near_zero():
    for scale in (1.0, 1e-5):
        vector = (scale * torch.randn(2, 3, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(geometry.axis_angle_to_matrix, (vector,))


def test_backproject_then_project_returns_the_pixels():
    K = torch.tensor([[[100.0, 0, 31.7], [0, 90, 20.2], [0, 0, 1]]], dtype=torch.float64)
    depth = 1 + torch.rand(1, 1, 24, 32, dtype=torch.float64) * 10
    points = geometry.backproject(depth, torch.linalg.inv(K))
    T = geometry.pose_vector_to_matrix(torch.tensor([[0.01, -0.02, 0.03]], dtype=torch.float64),
                                       torch.tensor([[0.1, 0.0, -0.3]], dtype=torch.float64))
    moved_back = geometry.invert_transform(T)
    pixels, z = geometry.project(
        T[:, :3, :3] @ points + T[:, :3, 3:], K, moved_back)  # there and back again
    torch.testing.assert_close(pixels, geometry.pixel_grid(24, 32, dtype=torch.float64)[:2][None])
    torch.testing.assert_close(z, depth.reshape(1, -1))


def test_scale_intrinsics_keeps_pixel_centres_aligned():
    K = torch.tensor([[200.0, 0, 99.5], [0, 200, 49.5], [0, 0, 1]])  # centred in 200x100
    half = geometry.scale_intrinsics(K, 0.5, 0.5)
    torch.testing.assert_close(half, torch.tensor([[100.0, 0, 49.5], [0, 100, 24.5], [0, 0, 1]]))
    K = torch.tensor([[210.0, 0, 99.5], [0, 190, 49.5], [0, 0, 1]])
    resized = geometry.scale_intrinsics(K, 0.25, 0.5)  # 200x100 -> 50x50
    torch.testing.assert_close(resized, torch.tensor([[52.5, 0, 24.5], [0, 95, 24.5], [0, 0, 1]]))


def test_closed_form_intrinsics_inverse_equals_the_matrix_inverse():
    K = torch.tensor([[[718.9, 0.0, 607.2], [0, 718.9, 185.2], [0, 0, 1]],
                      [[50.0, 0.7, 39.3], [0, 55.0, 11.6], [0, 0, 1]]], dtype=torch.float64)
    torch.testing.assert_close(geometry.invert_intrinsics(K), torch.linalg.inv(K))
