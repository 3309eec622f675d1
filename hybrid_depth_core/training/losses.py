"""Self-supervised losses (Monodepth2 / ManyDepth recipe): pure functions on tensors.

Images are (B, 3, H, W) in [0, 1]; per-pixel maps are (B, 1, H, W).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hybrid_depth_core.networks.decoder import depth_to_disp

SSIM_C1, SSIM_C2 = 0.01 ** 2, 0.03 ** 2
SSIM_WEIGHT = 0.85  # photometric error = 0.85 (1 - SSIM) / 2 + 0.15 L1
SMOOTHNESS_WEIGHT = 1e-3  # divided by 2^scale
LEASH_FACTOR = 2.0  # hint_leash holds a depth within this factor of its metric hint


def box_filter_3x3(x: torch.Tensor) -> torch.Tensor:
    """Mean over 3x3 windows, 'valid' (no padding), per channel. A depthwise convolution: on
    the CPU it is faster than avg_pool2d forward and backward (benchmarks/box_filter.py,
    docs/benchmarks.md)."""
    channels = x.shape[1]
    weight = torch.full((channels, 1, 3, 3), 1 / 9, dtype=x.dtype, device=x.device)
    return F.conv2d(x, weight, groups=channels)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel structural similarity on 3x3 windows (reflection padded), (B, C, H, W).
    Always in fp32: the variances E[x^2] - E[x]^2 cancel almost completely, and autocast would
    run the box filter (a convolution) in bf16, which put SSIM far off (docs/benchmarks.md)."""
    dtype = torch.promote_types(x.dtype, torch.float32)  # float64 stays (gradient checks)
    with torch.autocast(x.device.type, enabled=False):
        return _ssim(x.to(dtype), y.to(dtype))


def _ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = F.pad(x, (1, 1, 1, 1), mode='reflect'), F.pad(y, (1, 1, 1, 1), mode='reflect')
    # All five window means in one call.
    mu_x, mu_y, xx, yy, xy = box_filter_3x3(torch.cat([x, y, x * x, y * y, x * y], 1)).chunk(5, 1)
    sigma_x, sigma_y, sigma_xy = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return numerator / denominator


def photometric_error(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.85 * (1 - SSIM) / 2 + 0.15 * |difference|, averaged over channels -> (B, 1, H, W)."""
    l1 = (prediction - target).abs().mean(1, keepdim=True)
    structure = ((1 - ssim(prediction, target)) / 2).clamp(0, 1).mean(1, keepdim=True)
    return SSIM_WEIGHT * structure + (1 - SSIM_WEIGHT) * l1


def identity_error(unwarped: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Photometric errors of the source frames as they are, (B, n_sources, H, W). It depends on
    no prediction, so a training step computes it once for every scale and network."""
    return torch.cat([photometric_error(u, target) for u in unwarped], 1)


def reprojection_loss(warped: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Per-pixel minimum over source frames of the photometric error of the source frames
    synthesised into the target view: (B, 1, H, W)."""
    return torch.cat([photometric_error(w, target) for w in warped], 1).min(1, keepdim=True)[0]


def automask(reprojection: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """Monodepth2's auto-mask: 1 where warping lowers the error below that of every unwarped
    source (identity: identity_error of the same sources), 0 where a source matches better as
    it is (static camera, objects moving with it, textureless). A tiny noise on the identity
    error, drawn per call, breaks exact ties (ManyDepth). (B, 1, H, W) float, no gradient."""
    identity = identity.min(1, keepdim=True)[0]
    identity = identity + 1e-5 * torch.randn_like(identity)
    return (reprojection <= identity).float().detach()


def masked_mean(per_pixel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(loss x mask) / sum(mask): ManyDepth's normalisation, so that a loss averages over the
    pixels it supervises whatever fraction of the image they are (0 if there are none)."""
    return (per_pixel * mask).sum() / (mask.sum() + 1e-7)


def smoothness_loss(disparity: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised disparity: gradients are penalised less where
    the image has edges. disparity (B, 1, H, W), image (B, 3, H, W) of the same size."""
    disparity = disparity / (disparity.mean((2, 3), keepdim=True) + 1e-7)
    grad_x = (disparity[..., :, :-1] - disparity[..., :, 1:]).abs()
    grad_y = (disparity[..., :-1, :] - disparity[..., 1:, :]).abs()
    image_x = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(1, keepdim=True)
    image_y = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(1, keepdim=True)
    return (grad_x * torch.exp(-image_x)).mean() + (grad_y * torch.exp(-image_y)).mean()


def velocity_loss(translation: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """PackNet-SfM's velocity supervision: the mean over the pairs whose distance is known
    (finite) of | ||t|| - distance |, for predicted translations (B, 3) and measured distances
    (B,) in metres; 0 when none is known. Only the length is supervised: the direction stays
    the photometric loss's."""
    known = torch.isfinite(distance)
    error = (torch.linalg.vector_norm(translation.float(), dim=-1)
             - torch.nan_to_num(distance, nan=0.0)).abs()
    return torch.where(known, error, 0.0).sum() / known.sum().clamp(min=1)


def hint_loss(depth: torch.Tensor, hints: torch.Tensor, depth_error: torch.Tensor | None,
              hint_error: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth Hints' supervision (Watson et al., ICCV 2019) at the hint pixels where the hint
    (B, 1, H, W, NaN where none) synthesises the target better than the predicted depth does
    (the per-pixel errors `hint_error` < `depth_error`), nothing elsewhere; both errors None: at
    every hint ("always"). The term is |log depth - log hint|, a relative error, where Depth
    Hints has log(1 + |depth - hint|) in metres: these hints are mostly up to scale, brought
    to the prediction's (docs/benchmarks.md, "Depth hints"). Averaged over the pixels used, as
    Depth Hints does. Returns the loss (0 without any) and the used pixels (B, 1, H, W) float
    mask."""
    known = torch.isfinite(hints) & (hints > 0)
    used = known if depth_error is None else known & (hint_error < depth_error)
    safe = torch.where(used, hints, 1.0)
    error = (torch.log(depth.float().clamp(min=1e-6)) - torch.log(safe)).abs()
    used = used.to(error.dtype)
    return masked_mean(error, used), used


def hint_leash(logit: torch.Tensor, hints: torch.Tensor, min_depth: float,
               max_depth: float) -> torch.Tensor:
    """A pull on the network's sigmoid input `logit` (B, 1, H, W, at the hints' size) back to
    where the depth would be LEASH_FACTOR x its metric hint, at the hint pixels whose depth lies
    beyond that, and back to the hint / LEASH_FACTOR at those nearer than that; zero in between.
    Summed over those pixels, divided by the number of hints (0 without any).

    Why the logit: once a pixel's depth sits at either end of the range, the sigmoid saturates
    and the log-depth hint term's gradient vanishes (below 1e-8 at a logit of -25), so the hints
    cannot pull back a run that settled on a flat depth there (docs/benchmarks.md); here the
    gradient stays 1 per pixel. An end of the range within the factor holds nothing on its
    side."""
    known = torch.isfinite(hints) & (hints > 0)
    safe = torch.where(known, hints, 1.0)
    logit = logit.float()
    far = depth_to_disp(LEASH_FACTOR * safe, min_depth, max_depth)    # nearer than max_depth
    near = depth_to_disp(safe / LEASH_FACTOR, min_depth, max_depth)   # farther than min_depth
    gap = (torch.where(far > 0, F.relu(_logit(far) - logit), 0.0)
           + torch.where(near < 1, F.relu(logit - _logit(near)), 0.0))
    return torch.where(known, gap, 0.0).sum() / known.sum().clamp(min=1)


def _logit(p: torch.Tensor) -> torch.Tensor:
    """The inverse of the sigmoid; p clamped into (0, 1) (an out-of-range bound is masked by
    the caller)."""
    p = p.clamp(1e-30, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p)


def reliable_matching(argmin_depth: torch.Tensor, confidence: torch.Tensor,
                      teacher_depth: torch.Tensor) -> torch.Tensor:
    """ManyDepth's consistency mask: 1 where the cost volume can be trusted, i.e. the pixel had
    a confident matching and its best hypothesis and the single-frame teacher's depth are within
    100% of each other (each less than twice the other). (B, 1, h, w) maps at one resolution
    -> float mask, detached."""
    teacher_depth = teacher_depth.detach()
    ratio = torch.maximum(argmin_depth / teacher_depth.clamp(min=1e-6),
                          teacher_depth / argmin_depth.clamp(min=1e-6))
    return ((ratio < 2.0) & (confidence > 0.5)).float().detach()


def consistency_loss(depth: torch.Tensor, teacher_depth: torch.Tensor, mask: torch.Tensor,
                     relative: bool = True) -> torch.Tensor:
    """L1 between the multi-frame depth and the single-frame teacher's on `mask`, averaged over
    all pixels (ManyDepth); the teacher gets no gradient. ManyDepth's difference is absolute,
    in the network's depth units; `relative` divides it by the teacher's depth, so that the loss
    weighs the same whatever scale training settles on (with metre-scale depths the absolute
    one outweighed the photometric loss: docs/benchmarks.md compares the two)."""
    teacher_depth = teacher_depth.detach()
    difference = (depth - teacher_depth).abs()
    if relative:
        difference = difference / teacher_depth
    return (difference * mask).mean()


def updated_depth_range(depth_range: torch.Tensor, teacher_depth: torch.Tensor,
                        min_depth: float, momentum: float = 0.99) -> torch.Tensor:
    """ManyDepth's adaptive hypothesis range: an exponential moving average towards 0.9 x and
    1.1 x the teacher's per-image min and max depth, each averaged over the batch (so that one
    image cannot widen every bin), the min never below `min_depth`. teacher_depth (B, 1, H, W)."""
    teacher_depth = teacher_depth.detach().flatten(1)
    low = (0.9 * teacher_depth.min(1)[0].mean()).clamp(min=min_depth)
    high = 1.1 * teacher_depth.max(1)[0].mean()
    observed = torch.stack([low, high])
    return momentum * depth_range + (1 - momentum) * observed.to(depth_range)
