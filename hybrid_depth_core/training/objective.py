"""The self-supervised objective as one module (depth net, teacher, pose net), so that a single
DistributedDataParallel wrapper synchronises all of them. Batches follow datasets/samples.py.

A multi-frame step is ManyDepth's (Watson et al., CVPR 2021, and its trainer.py):
- the single-frame teacher and the pose network learn from the teacher's auto-masked
  photometric loss alone (plus, where the data has the camera's measured motion, PackNet-SfM's
  velocity loss on the pose network's translation, which makes both metric); the multi-frame
  network's view synthesis uses detached poses;
- matching augmentation is drawn per sample: a static camera (the lookup frame replaced by the
  un-jittered current frame, the predicted pose kept, so that the cost volume is confidently
  wrong) or a zero cost volume;
- the multi-frame network has no auto-masking: its photometric loss covers the pixels whose
  matching is reliable in samples that are not augmented, normalised by their count, and the
  consistency loss (to the detached teacher) covers the rest, so augmented samples learn from
  the teacher only.
Where the batch has depth hints (tracks/hints.py), both the teacher and the multi-frame network
add Depth Hints' term (Watson et al., ICCV 2019; losses.hint_loss) at each scale, on top of
ManyDepth's losses, which stay as they are: once for the hints' shape (each image's hints at its
predicted scale) and once for the metric hints' metres, each with a weight of its own, and
a leash on depth run far off the metric hints, either way (losses.hint_leash).
One deliberate difference: the consistency loss is relative by default (`relative_consistency`;
docs/benchmarks.md measures it against ManyDepth's absolute one). A single-frame model trains
with the teacher's step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hybrid_depth_core.training import losses
from hybrid_depth_core.geometry import invert_transform, warp
from hybrid_depth_core.networks import DepthModel, DepthModelConfig, PoseNet, disp_to_depth

SOURCE_FRAMES = (-1, 1)  # the frame offsets warped into the target frame 0
# Per-sample matching augmentation (ManyDepth's augmentation_mask, keeping which kind it was).
NO_AUGMENTATION, STATIC_CAMERA, ZERO_COST_VOLUME = 0, 1, 2
HINT_RULES = ('depth_hints', 'always')


@dataclass(frozen=True)
class LossConfig:
    smoothness: float = losses.SMOOTHNESS_WEIGHT  # divided by 2^scale
    consistency: float = 1.0                       # multi-frame vs teacher (ManyDepth)
    relative_consistency: bool = True              # false: ManyDepth's |depth - teacher|
    static_camera_probability: float = 0.25        # lookup := current frame, predicted pose
    zero_cost_volume_probability: float = 0.25     # no matching for the sample
    # | ||t_pose|| - measured distance | where the data has the camera's motion (PackNet-SfM's
    # velocity loss, its paper's weight): the pose network's translation, and with it the
    # depth, in metres.
    velocity: float = 0.05
    # |log depth - log hint| to the recording's own depth hints, at every hint ('always') or
    # where the hint reprojects better than the prediction ('depth_hints', Depth Hints' rule).
    # `hints` weighs their shape: each image's hints brought to its predicted scale first (0:
    # no hints at all); `metric_hints` the metric ones as they are (their metres). Why these
    # values: docs/benchmarks.md, "A faster learner".
    hints: float = 10.0
    metric_hints: float = 1.0
    hints_rule: str = 'always'
    # losses.hint_leash on each network's first scale where the batch has metric hints: a
    # guard against the run-off to a flat, far depth (docs/benchmarks.md); 0 turns it off.
    hint_leash: float = 1.0

    def __post_init__(self):
        if self.hints_rule not in HINT_RULES:
            raise ValueError(f'hints_rule must be one of {", ".join(HINT_RULES)}, got '
                             f'{self.hints_rule!r}')
        for name in ('smoothness', 'consistency', 'static_camera_probability',
                     'zero_cost_volume_probability', 'velocity', 'hints', 'metric_hints',
                     'hint_leash'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f'{name} must be a number >= 0, got {value!r}')
        if self.static_camera_probability + self.zero_cost_volume_probability > 1:
            raise ValueError('static_camera_probability + zero_cost_volume_probability must '
                             'be at most 1')


def draw_matching_augmentation(config: LossConfig, batch_size: int,
                               generator: torch.Generator) -> torch.Tensor:
    """ManyDepth's per-sample draw: (B,) int64, NO_AUGMENTATION, STATIC_CAMERA or
    ZERO_COST_VOLUME."""
    draw = torch.rand(batch_size, generator=generator)
    static = config.static_camera_probability
    zero = static + config.zero_cost_volume_probability
    return torch.where(draw < static, STATIC_CAMERA,
                       torch.where(draw < zero, ZERO_COST_VOLUME, NO_AUGMENTATION))


def teacher_config(model_config: DepthModelConfig) -> DepthModelConfig:
    """ManyDepth trains a single-frame teacher alongside the multi-frame network (its ResNet18:
    `teacher_arch`), with the same depth range."""
    return DepthModelConfig(arch=model_config.teacher_arch, multi_frame=False,
                            hybrid=model_config.hybrid, min_depth=model_config.min_depth,
                            max_depth=model_config.max_depth,
                            initial_depth=model_config.initial_depth)


class SelfSupervisedObjective(nn.Module):
    """forward(batch, augmentation, frozen) -> (total loss, {name: loss term}, outputs).

    augmentation: (B,) codes from draw_matching_augmentation, None for none. frozen: the
    teacher and pose network are fixed (no gradient, no loss of their own). The terms keep
    their graphs (for tests of what reaches which network); outputs are detached.
    """

    def __init__(self, model_config: DepthModelConfig, loss_config: LossConfig):
        super().__init__()
        self.loss_config = loss_config
        self.depth = DepthModel(model_config)
        self.pose = PoseNet(model_config.pose_downsample)
        self.teacher = (DepthModel(teacher_config(model_config))
                        if model_config.multi_frame else None)

    def set_mode(self, frozen: bool) -> None:
        """train() for what learns; once frozen, the teacher and pose network use their
        batch-norm running statistics and stop updating them (ManyDepth)."""
        self.train()
        if frozen:
            for model in (self.pose, self.teacher):
                if model is not None:
                    model.eval()

    def forward(self, batch: dict, augmentation: torch.Tensor | None = None,
                frozen: bool = False):
        aug = {f: batch[('color_aug', f, 0)] for f in (0,) + SOURCE_FRAMES}
        target = batch[('color', 0, 0)]
        K = batch[('K', 0)]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            poses = self._poses(batch)
            teacher = self.teacher(aug[0]) if self.teacher is not None else None
        single = teacher if teacher is not None else self.depth(aug[0])
        with torch.no_grad():
            identity = losses.identity_error(
                [batch[('color', f, 0)] for f in SOURCE_FRAMES], target)
        photometric, smoothness, single_depths, kept, errors = self._view_synthesis(
            batch, single.disparities, poses, identity=identity)
        single_loss = photometric + smoothness
        terms = {'automask/kept': kept.mean()}
        hints = self._hints(batch, single_depths[0], poses)
        for name, (hint, hint_error, weight) in hints.items():
            term, used = self._hint_term(single_depths, errors, hint, hint_error)
            single_loss = single_loss + weight * term
            terms.update({name: term, name.replace('loss/', 'used/'): used})
        leash = self._leash(single.logits[0], batch)
        if leash is not None:
            single_loss = single_loss + self.loss_config.hint_leash * leash
            terms['loss/hint_leash'] = leash
        if ('distance', 1) in batch:  # measured motion: the pose network learns metres
            velocity = losses.velocity_loss(  # the mean over every pair with a distance
                torch.cat([poses[f][:, :3, 3] for f in SOURCE_FRAMES]),
                torch.cat([batch[('distance', f)] for f in SOURCE_FRAMES]))
            single_loss = single_loss + self.loss_config.velocity * velocity
            terms['loss/velocity'] = velocity
        if self.teacher is None:
            terms.update({'loss/depth': photometric, 'loss/smoothness': smoothness,
                          'loss/total': single_loss})
            return single_loss, terms, {'depth': single_depths[0].detach(),
                                        'teacher_depth': None}

        terms['loss/teacher'] = single_loss
        if augmentation is None:
            augmentation = torch.full((target.shape[0],), NO_AUGMENTATION, dtype=torch.long)
        augmentation = augmentation.to(target.device).view(-1, 1, 1, 1)
        lookup = torch.where(augmentation == STATIC_CAMERA, target, aug[-1])
        output = self.depth(aug[0], lookup, K, poses[-1].detach(),
                            lookup_valid=(augmentation != ZERO_COST_VOLUME).flatten())
        size = target.shape[-2:]
        reliable = losses.reliable_matching(
            F.interpolate(output.matching.argmin_depth, size, mode='nearest'),
            F.interpolate(output.matching.confidence, size, mode='nearest'),
            single_depths[0])
        reliable = reliable * (augmentation == NO_AUGMENTATION).to(reliable.dtype)
        detached = {f: T.detach() for f, T in poses.items()}  # pose learns from the teacher
        photometric, smoothness, depths, _, errors = self._view_synthesis(
            batch, output.disparities, detached, mask=reliable)
        consistency = sum(
            losses.consistency_loss(depth, teacher_depth, 1 - reliable,
                                    self.loss_config.relative_consistency)
            for depth, teacher_depth in zip(depths, single_depths)) / len(depths)
        total = photometric + smoothness + self.loss_config.consistency * consistency
        for name, (hint, hint_error, weight) in hints.items():
            term, _ = self._hint_term(depths, errors, hint, hint_error)
            total = total + weight * term
            terms[name.replace('loss/', 'loss/multi_frame_')] = term
        leash = self._leash(output.logits[0], batch)
        if leash is not None:
            total = total + self.loss_config.hint_leash * leash
            terms['loss/multi_frame_hint_leash'] = leash
        if not frozen:
            total = total + single_loss
        terms.update({'loss/depth': photometric, 'loss/smoothness': smoothness,
                      'loss/consistency': consistency,
                      'reliable': reliable.mean(),
                      'augmented': (augmentation != NO_AUGMENTATION).float().mean(),
                      'loss/total': total})
        return total, terms, {'depth': depths[0].detach(),
                              'teacher_depth': single_depths[0].detach()}

    @torch.no_grad()
    def score(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out scoring: the auto-masked photometric loss (the teacher's form, which any
        depth can be given) of the depth network's full-size depth, and that depth. Multi-frame
        networks match against the earlier frame, as at inference."""
        aug = {f: batch[('color_aug', f, 0)] for f in (0,) + SOURCE_FRAMES}
        poses = self._poses(batch)
        if self.teacher is None:
            output = self.depth(aug[0])
        else:
            output = self.depth(aug[0], aug[-1], batch[('K', 0)], poses[-1])
        identity = losses.identity_error([batch[('color', f, 0)] for f in SOURCE_FRAMES],
                                         batch[('color', 0, 0)])
        photometric, _, depths, _, _ = self._view_synthesis(batch, output.disparities[:1],
                                                            poses, identity=identity)
        return photometric, depths[0]

    def _poses(self, batch: dict) -> dict:
        """T_source_target for each source frame (the pose net sees frames in time order),
        corrections of the measured turns when the model uses them. Geometry runs in fp32
        whatever the autocast: bf16 cannot hold pixel coordinates."""
        aug = {f: batch[('color_aug', f, 0)] for f in (0,) + SOURCE_FRAMES}
        turn = ({f: batch[('turn', f)] for f in SOURCE_FRAMES} if self.depth.config.turn_prior
                else dict.fromkeys(SOURCE_FRAMES))
        return {-1: invert_transform(self.pose(aug[-1], aug[0], turn[-1]).float()),
                1: self.pose(aug[0], aug[1], turn[1]).float()}

    @torch.no_grad()
    def _hints(self, batch: dict, depth: torch.Tensor, poses: dict) -> dict:
        """{term name: (hints, their per-pixel reprojection error or None, weight)} for the
        batch's hints (none with `hints` 0): 'hints' (up to scale) and 'metric_hints_shape'
        (metric) with each image's hints brought to the scale of its `depth` (the median ratio
        over its hints), weighted by `hints`, and 'metric_hints' as they are, by
        `metric_hints`. A metric image's scale can be off where its poses are (rotation error
        of the motion capture: docs/benchmarks.md), its shape much less. The error is the view
        synthesis with the pose network's poses of the hints where there are any and `depth`
        elsewhere ("always" needs none)."""
        config, found = self.loss_config, {}
        terms = [('hints', 'hints', True, config.hints),
                 ('metric_hints', 'metric_hints_shape', True, config.hints),
                 ('metric_hints', 'metric_hints', False, config.metric_hints)]
        for key, name, aligned, weight in terms if config.hints else ():
            if key not in batch or not weight:
                continue
            hints = batch[key]
            known = torch.isfinite(hints) & (hints > 0)
            if aligned:
                ratio = torch.where(known, depth.float() / torch.where(known, hints, 1.0),
                                    torch.nan)
                scale = torch.nanmedian(ratio.flatten(1), dim=1).values.nan_to_num(1.0)
                hints = hints * scale.view(-1, 1, 1, 1)
            error = None
            if config.hints_rule == 'depth_hints':
                filled = torch.where(known, hints, depth.float())
                warped = [warp(batch[('color', f, 0)], filled, poses[f].float(),
                               batch[('K', 0)], batch[('inv_K', 0)]) for f in SOURCE_FRAMES]
                error = losses.reprojection_loss(warped, batch[('color', 0, 0)])
            found[f'loss/{name}'] = (hints, error, weight)
        return found

    def _leash(self, logit: torch.Tensor, batch: dict) -> torch.Tensor | None:
        """losses.hint_leash of a network's first-scale disparity `logit` to the batch's metric
        hints, None where it does not apply (no metric hints, hints off, `hint_leash` 0)."""
        config = self.loss_config
        if 'metric_hints' not in batch or not (config.hints and config.hint_leash):
            return None
        hints = batch['metric_hints']
        full = F.interpolate(logit.float(), hints.shape[-2:], mode='bilinear',
                             align_corners=False)
        return losses.hint_leash(full, hints, self.depth.config.min_depth,
                                 self.depth.config.max_depth)

    def _hint_term(self, depths, errors, hints, hint_error):
        """losses.hint_loss averaged over the scales, and the fraction of hints the first
        scale used."""
        total, used = 0.0, None
        for depth, error in zip(depths, errors):
            term, mask = losses.hint_loss(depth, hints, None if hint_error is None else error,
                                          hint_error)
            total = total + term
            used = mask if used is None else used
        known = (torch.isfinite(hints) & (hints > 0)).sum()
        return total / len(depths), used.sum() / known.clamp(min=1)

    def _view_synthesis(self, batch, disparities, poses, identity=None, mask=None):
        """Multi-scale photometric and smoothness losses, disparities upsampled to full size;
        the photometric loss averages over `mask`, or over the auto-mask of each scale when
        `identity` (losses.identity_error of the unwarped sources) is given. Returns the two
        losses (each averaged over scales, smoothness weighted), the depth of each scale, the
        first scale's mask and each scale's per-pixel error a depth hint must beat (detached):
        the reprojection error, or with `identity` the smaller of it and the identity's."""
        target = batch[('color', 0, 0)]
        K, inv_K = batch[('K', 0)], batch[('inv_K', 0)]
        sources = [batch[('color', f, 0)] for f in SOURCE_FRAMES]
        config = self.depth.config
        photometric, smoothness, depths, first_mask, errors = 0.0, 0.0, [], None, []
        for scale, disparity in enumerate(disparities):
            disparity = disparity.float()
            full = F.interpolate(disparity, target.shape[-2:], mode='bilinear',
                                 align_corners=False)
            depth = disp_to_depth(full, config.min_depth, config.max_depth)
            warped = [warp(source, depth, poses[f], K, inv_K)
                      for f, source in zip(SOURCE_FRAMES, sources)]
            reprojection = losses.reprojection_loss(warped, target)
            scale_mask = losses.automask(reprojection, identity) if identity is not None else mask
            smooth = losses.smoothness_loss(disparity, batch[('color', 0, scale)])
            photometric = photometric + losses.masked_mean(reprojection, scale_mask)
            smoothness = smoothness + self.loss_config.smoothness / 2 ** scale * smooth
            depths.append(depth)
            # what a hint must beat (Depth Hints' rule): with auto-masking, the unwarped
            # sources' error too
            errors.append((reprojection if identity is None
                           else torch.minimum(reprojection, identity)).detach())
            first_mask = scale_mask if first_mask is None else first_mask
        scales = len(disparities)
        return photometric / scales, smoothness / scales, depths, first_mask, errors
