"""The self-supervised objective as one module (depth net, teacher, pose net), so that a single
DistributedDataParallel wrapper synchronises all of them. Batches follow data/samples.py."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hybrid_depth_core import losses
from hybrid_depth_core.geometry import invert_transform, warp
from hybrid_depth_core.networks import DepthModel, DepthModelConfig, PoseNet, disp_to_depth

SOURCES = (-1, 1)


@dataclass(frozen=True)
class LossConfig:
    smoothness: float = losses.SMOOTHNESS_WEIGHT  # divided by 2^scale
    consistency: float = 1.0                       # multi-frame vs teacher (ManyDepth)
    static_camera_probability: float = 0.25        # lookup frame := current frame, T = I
    zero_cost_volume_probability: float = 0.25     # no lookup frame at all


def teacher_config(model_config: DepthModelConfig) -> DepthModelConfig:
    """ManyDepth trains a single-frame ResNet18 teacher alongside the multi-frame network, with
    the same depth range."""
    return DepthModelConfig(arch='resnet18', multi_frame=False, min_depth=model_config.min_depth,
                            max_depth=model_config.max_depth,
                            initial_depth=model_config.initial_depth)


class SelfSupervisedObjective(nn.Module):
    """forward(batch, augmentation draw in [0, 1), frozen) -> (total loss, {name: value})."""

    def __init__(self, model_config: DepthModelConfig, loss_config: LossConfig):
        super().__init__()
        self.loss_config = loss_config
        self.depth = DepthModel(model_config)
        self.pose = PoseNet(model_config.pose_downsample)
        self.teacher = (DepthModel(teacher_config(model_config))
                        if model_config.multi_frame else None)

    def forward(self, batch: dict, draw: float, frozen: bool = False):
        aug = {f: batch[('color_aug', f, 0)] for f in (0,) + SOURCES}
        K, inv_K = batch[('K', 0)], batch[('inv_K', 0)]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            # T_source_target for each source frame (the pose net sees frames in time order).
            # Geometry runs in fp32 whatever the autocast: bf16 cannot hold pixel coordinates.
            poses = {-1: invert_transform(self.pose(aug[-1], aug[0]).float()),
                     1: self.pose(aug[0], aug[1]).float()}
            teacher = self.teacher(aug[0]) if self.teacher is not None else None
        logs = {}
        total = 0.0
        with torch.no_grad():
            identity = losses.identity_error([batch[('color', f, 0)] for f in SOURCES],
                                             batch[('color', 0, 0)])
        if teacher is not None:
            teacher_loss, teacher_depths, _ = self._view_synthesis(
                batch, teacher.disparities, poses, K, inv_K, identity)
            if not frozen:
                total = total + teacher_loss
            logs['loss/teacher'] = teacher_loss.detach()

        lookup, T_lookup = aug[-1], poses[-1].detach()
        static = self.loss_config.static_camera_probability
        if draw < static:
            lookup, T_lookup = aug[0], torch.eye(4, device=K.device).expand_as(T_lookup)
        elif draw < static + self.loss_config.zero_cost_volume_probability:
            lookup = None
        output = self.depth(aug[0], lookup, K, T_lookup)

        unreliable = None
        if teacher is not None:
            size = teacher_depths[0].shape[-2:]
            unreliable = losses.unreliable_matching(
                F.interpolate(output.matching.argmin_depth, size, mode='nearest'),
                F.interpolate(output.matching.confidence, size, mode='nearest'),
                teacher_depths[0])
        depth_loss, depths, reprojection_mask = self._view_synthesis(
            batch, output.disparities, poses, K, inv_K, identity, unreliable)
        total = total + depth_loss
        logs['loss/depth'] = depth_loss.detach()
        logs['automask/kept'] = reprojection_mask.mean().detach()
        if teacher is not None:
            consistency = sum(losses.consistency_loss(depth, teacher_depth, unreliable)
                              for depth, teacher_depth in zip(depths, teacher_depths))
            consistency = consistency / len(depths)
            total = total + self.loss_config.consistency * consistency
            logs['loss/consistency'] = consistency.detach()
            logs['unreliable'] = unreliable.mean().detach()
        logs['loss/total'] = total.detach()
        return total, logs, {'depth': depths[0].detach(),
                             'teacher_depth': teacher_depths[0].detach() if teacher else None}

    def _view_synthesis(self, batch, disparities, poses, K, inv_K, identity, exclude=None):
        """Multi-scale photometric + smoothness loss; disparities upsampled to full size.
        identity: losses.identity_error of the unwarped sources, shared by every call (so
        teacher, student and all scales also share its tie-breaking noise, which only decides
        exact ties)."""
        target = batch[('color', 0, 0)]
        sources = [batch[('color', f, 0)] for f in SOURCES]
        config = self.depth.config
        total, depths, mask = 0.0, [], None
        for scale, disparity in enumerate(disparities):
            disparity = disparity.float()
            full = F.interpolate(disparity, target.shape[-2:], mode='bilinear',
                                 align_corners=False)
            depth = disp_to_depth(full, config.min_depth, config.max_depth)
            warped = [warp(source, depth, poses[f], K, inv_K)
                      for f, source in zip(SOURCES, sources)]
            per_pixel, won = losses.reprojection_loss(warped, target, identity)
            if exclude is not None:  # pixels the consistency loss supervises instead
                per_pixel = per_pixel * (1 - exclude)
            smooth = losses.smoothness_loss(disparity, batch[('color', 0, scale)])
            total = total + per_pixel.mean() + self.loss_config.smoothness / 2 ** scale * smooth
            depths.append(depth)
            mask = won if mask is None else mask
        return total / len(disparities), depths, mask
