"""The training loop, readable top to bottom: data, models, optimiser, steps, checkpoints.

The schedule (warm-up, learning-rate step, freeze) is set in fractions of the run: of its
steps with --max-steps (or `epochs` epochs), of its wall time with --minutes (the time of earlier
sessions counted, so a resumed run keeps its schedule).

Repeatability: data order comes from (seed, epoch), augmentation from (seed, epoch, index), and
the torch RNG is re-seeded from (seed, step) before every step, so a run resumed from a
checkpoint takes exactly the steps the uninterrupted run would have taken (with --minutes, the
steps at which the schedule moves depend on the machine's speed).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from hybrid_depth_core.datasets.sources import build_dataset
from hybrid_depth_core.device import autocast, pick_device
from hybrid_depth_core.errors import UserError, one_line
from hybrid_depth_core.atomic import check_output_directory
from hybrid_depth_core.networks.checkpoint import ModelSection, load_checkpoint, save_checkpoint
from hybrid_depth_core.config_dicts import to_dict
from hybrid_depth_core.training.config import (TrainConfig, checkpoint_config, is_frozen,
                                               learning_rate)
from hybrid_depth_core.training.defaults import (measure_heading, pose_prior, resolve, scale_of,
                                                 training_focal)
from hybrid_depth_core.training.validation import build_validation_set, validate
from hybrid_depth_core.networks.resnet import load_imagenet_weights
from hybrid_depth_core.training.losses import updated_depth_range
from hybrid_depth_core.training.objective import (SelfSupervisedObjective,
                                                  draw_matching_augmentation)

CHECKPOINT_NAME = 'last.pt'
BEST_NAME = 'best.pt'  # the checkpoint with the lowest held-out photometric loss so far


class EpochSampler(torch.utils.data.Sampler):
    """A permutation drawn from (seed, epoch), split across ranks, starting at sample `start`.
    Every rank gets the same `per_rank` samples an epoch (the rest of the permutation waits for
    another epoch), so that all ranks agree on the epoch, and with it on the learning rate, the
    freeze and the collective calls."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1,
                 per_rank: int | None = None):
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.per_rank = size // world if per_rank is None else per_rank
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start_index: int) -> None:
        self.epoch, self.start = epoch, start_index

    def _indices(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        return order[self.rank::self.world][:self.per_rank][self.start:]

    def __iter__(self):
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


# Keeps the per-batch height draw apart from the items' own (seed, epoch, item) draws.
HEIGHT_DRAW = 7


class WindowHeightBatches(torch.utils.data.Sampler):
    """The batches of a BatchSampler over an EpochSampler, as (index, rows) items: one window
    height per batch, drawn uniformly from `heights` by (seed, epoch, batch of the epoch), so
    that every rank draws alike and a run resumed mid-epoch draws what it would have."""

    def __init__(self, batches: torch.utils.data.BatchSampler, heights, seed: int):
        self.batches, self.heights, self.seed = batches, tuple(heights), seed

    def __iter__(self):
        sampler = self.batches.sampler
        first = sampler.start // self.batches.batch_size
        for number, batch in enumerate(self.batches, start=first):
            draw = np.random.default_rng([self.seed, sampler.epoch, number, HEIGHT_DRAW])
            rows = self.heights[int(draw.integers(len(self.heights)))]
            yield [(index, rows) for index in batch]

    def __len__(self) -> int:
        return len(self.batches)


def train(config: TrainConfig, out: Path, max_steps: int | None = None,
          minutes: float | None = None, resume: bool = False, device: str = 'auto',
          progress: bool = True, init: Path | None = None) -> Path:
    """Train for `max_steps` steps, `minutes` of training time, or else `config.epochs` epochs;
    returns the final checkpoint. The config's automatic values are resolved first. `init`: a
    checkpoint whose networks this run starts from (a new schedule and optimiser: fine-tuning),
    instead of ImageNet or random weights."""
    out = Path(out)
    if init is not None and resume:
        raise UserError('--init starts a new run from other weights; --resume continues this '
                        'one: give one of them')
    checkpoint_path = out / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise UserError(f'{checkpoint_path} exists: pass --resume to continue it, or choose '
                        f'another --out')
    if resume and not checkpoint_path.exists():
        raise UserError(f'--resume: no checkpoint at {checkpoint_path}')
    check_output_directory(out, config.data.bags if config.data.source == 'bag' else ())
    device = pick_device(device)  # first: the process group's backend follows it
    rank, world = _init_distributed(device)
    config = resolve(config, device)
    torch.manual_seed(config.seed)
    start = _init_state(init, config) if init is not None else None  # checked before the data

    dataset = build_dataset(config.data, config.augment, config.seed,
                            progress=progress and rank == 0, turns=config.model.turn_prior,
                            hints=config.loss.hints > 0)
    steps_per_epoch = len(dataset) // world // config.batch_size
    if steps_per_epoch == 0:
        raise UserError(f'{len(dataset)} samples are fewer than one batch of '
                        f'{config.batch_size} per process (record more, or lower '
                        f'--frame-stride or batch_size)')
    sampler = EpochSampler(len(dataset), config.seed, rank, world,
                           per_rank=steps_per_epoch * config.batch_size)
    validation = build_validation_set(config, dataset, progress=progress and rank == 0)
    scale = scale_of(config, dataset)
    focal = training_focal(dataset)
    if progress and rank == 0:
        print(f'depth in metres: the velocity loss has {scale["pairs_with_motion"]} training '
              f'pairs with measured motion (median {scale["median_distance_m"]:.3f} m)'
              if scale['metric'] else
              'depth up to scale: no measured motion to learn metres from (data.motion, '
              'loss.velocity)')
    objective = SelfSupervisedObjective(config.model, config.loss).to(device)
    if config.pretrained and start is None:  # --init brings its own weights
        source = True if config.pretrained == 'download' else config.pretrained
        for model in (objective.depth, objective.pose, objective.teacher):
            if model is not None:
                load_imagenet_weights(model.encoder, source)
    # The fused kernel (CPU and CUDA, the devices pick_device gives) updates all parameters in
    # one pass: faster than the per-parameter loop on the CPU (docs/benchmarks.md).
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad],
                                 lr=config.learning_rate, fused=True)
    step, elapsed, best = 0, 0.0, math.inf
    if resume:
        state = load_checkpoint(checkpoint_path, map_location=device)
        if state['config'] != to_dict(config):
            raise UserError(f'{checkpoint_path} was trained with a different config; resume '
                            f'with the same --config and overrides')
        objective.load_state_dict(state['objective'])
        optimizer.load_state_dict(state['optimizer'])
        step, elapsed = state['step'], state.get('elapsed_s', 0.0)
        best_path = out / BEST_NAME  # written after last.pt's best_val, if a run died between
        best = (load_checkpoint(best_path)['best_val'] if best_path.exists()
                else state.get('best_val', math.inf))
    elif start is not None:
        try:
            objective.load_state_dict(start['objective'])  # exported fp16 is cast to fp32
        except RuntimeError as error:  # mis-shaped tensors
            raise UserError(f'--init {init}: its weights do not fit this config\'s networks '
                            f'({one_line(error)})') from None
        if progress and rank == 0:
            print(f'starting from the networks of {init} (step {start.get("step", 0)}): a new '
                  f'schedule and optimiser')
    else:
        heading, pairs = measure_heading(dataset)
        prior = pose_prior(heading, scale['median_distance_m'])
        objective.pose.decoder.start_moving(prior)
        if progress and rank == 0:
            print(f'camera heading from {pairs} frame pairs {np.round(heading, 2).tolist()} '
                  f'(length 1: all agree): the pose network starts '
                  + (f'moving {np.round(prior, 2).tolist()} a frame' if prior.any()
                     else 'standing still'))
    wrapped = objective
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=True)  # frozen teacher/pose and zero-cost-volume steps
    precision = autocast(device, config.precision)

    total_steps = (max_steps if max_steps is not None else math.inf if minutes is not None
                   else config.epochs * steps_per_epoch)

    def progress_of_run(step: int) -> float:
        if minutes is not None:
            return min(1.0, (time.monotonic() - started) / (60 * minutes))
        return step / total_steps  # ManyDepth's epoch >= 15 of 20 is progress >= 0.75

    writer = _tensorboard(out, rank)
    bar = tqdm(total=None if minutes is not None else total_steps, initial=step,
               desc='training', unit='step', disable=not progress or rank != 0)
    started = time.monotonic() - elapsed  # earlier sessions' training time counts
    last_log, logged, since_log, val_postfix = time.monotonic(), {}, 0, {}
    frozen = None
    while step < total_steps:
        epoch, batch_in_epoch = divmod(step, steps_per_epoch)
        dataset.set_epoch(epoch)
        sampler.set_position(epoch, batch_in_epoch * config.batch_size)
        batches = torch.utils.data.BatchSampler(sampler, config.batch_size, drop_last=True)
        if config.data.window_heights:
            batches = WindowHeightBatches(batches, config.data.window_heights, config.seed)
        loader = torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, num_workers=config.num_workers,
            pin_memory=device.type == 'cuda', persistent_workers=False)
        frozen = None  # a new epoch sets the modes again
        for batch in loader:
            time_is_up = minutes is not None and time.monotonic() - started > 60 * minutes
            if step >= total_steps or _on_any_rank(time_is_up, world, device):
                total_steps = step  # budget spent: stop after saving
                break
            run_progress = _agreed(progress_of_run(step), world, device)
            # ManyDepth freezes its teacher and pose network; a single-frame model has no
            # teacher and keeps training its pose network throughout, as Monodepth2 does. The
            # optimiser carries on (frozen parameters get no gradient, so Adam skips them):
            # ManyDepth's trainer rebuilds it here, which also restarts its learning-rate
            # schedule (docs/benchmarks.md measures both).
            if frozen != is_frozen(config, run_progress):
                frozen = is_frozen(config, run_progress)
                objective.set_mode(frozen)
            torch.manual_seed(config.seed * 1_000_003 + step)
            for group in optimizer.param_groups:
                group['lr'] = learning_rate(config, run_progress)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            augmentation = draw_matching_augmentation(
                config.loss, config.batch_size,
                torch.Generator().manual_seed((config.seed * 1_000_003 + step) * 1_009 + rank))
            with precision:
                loss, logs, outputs = wrapped(batch, augmentation, frozen)
            if _on_any_rank(not math.isfinite(loss.item()), world, device):
                raise RuntimeError(f'loss became {loss.item()} at step {step} (in one of '
                                   f'{world} processes); the last good checkpoint is '
                                   f'{checkpoint_path}')
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if objective.teacher is not None and not frozen:
                _update_depth_bins(objective, outputs['teacher_depth'], world)
            step += 1
            since_log += 1
            for key, value in logs.items():
                logged[key] = logged.get(key, 0.0) + float(value.detach())
            bar.update(1)
            if step % config.log_every == 0 or step == total_steps:
                now = time.monotonic()
                rate = config.batch_size * world * since_log / max(now - last_log, 1e-9)
                averages = {k: v / since_log for k, v in logged.items()}
                bar.set_postfix(loss=f'{averages["loss/total"]:.4f}', img_s=f'{rate:.1f}',
                                **val_postfix)
                if writer:
                    for key, value in averages.items():
                        writer.add_scalar(key, value, step)
                    writer.add_scalar('lr', optimizer.param_groups[0]['lr'], step)
                    writer.add_scalar('images_per_second', rate, step)
                logged, since_log, last_log = {}, 0, now
            if writer and step % config.image_every == 0:
                writer.add_image('depth', _colorize(outputs['depth'][0]), step)
                writer.add_image('image', batch[('color', 0, 0)][0], step)
            state = {'elapsed_s': time.monotonic() - started, 'best_val': best, 'scale': scale,
                     'focal_px': focal}
            if step % steps_per_epoch == 0 and validation is not None:
                scores = validate(objective, validation, device, precision)
                objective.set_mode(frozen)
                state['best_val'] = best = _save_if_best(out, scores, best, rank, writer, step,
                                                         config, objective, optimizer, state)
                val_postfix = {'val': f'{scores["val/photometric"]:.4f}'}
            if rank == 0 and step % config.checkpoint_every == 0:
                _save(checkpoint_path, config, objective, optimizer, step, state)
            if step % steps_per_epoch == 0:
                break  # the epoch's last batch: the next epoch re-shuffles
    bar.close()
    state = {'elapsed_s': time.monotonic() - started, 'best_val': best, 'scale': scale,
             'focal_px': focal}
    if validation is not None and step % steps_per_epoch:  # the last, partial epoch
        scores = validate(objective, validation, device, precision)
        state['best_val'] = _save_if_best(out, scores, best, rank, writer, step, config,
                                          objective, optimizer, state)
    if rank == 0:
        _save(checkpoint_path, config, objective, optimizer, step, state)
        warning = collapse_warning(objective)
        if warning and progress:
            print(f'warning: {warning}')
    if writer:
        writer.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return checkpoint_path


def collapse_warning(objective) -> str | None:
    """What to say when a multi-frame run's teacher ended with all its depth at one end of the
    range (ManyDepth's adapted hypothesis range within 20% of min_depth or max_depth): it
    learnt no depth, and a metric checkpoint would put obstacles at min_depth everywhere."""
    if objective.teacher is None:
        return None
    low, high = objective.depth.cost_volume.depth_range.tolist()
    config = objective.depth.config
    if low < 1.2 * config.min_depth and high < 1.2 * low:
        end = f'floor (model.min_depth {config.min_depth:g} m)'
    elif high > config.max_depth / 1.2 and high < 1.2 * low:
        end = f'ceiling (model.max_depth {config.max_depth:g} m)'
    else:
        return None
    return (f'the teacher\'s depth ended between {low:.3g} and {high:.3g} m, at the range\'s '
            f'{end}: the network learnt no depth. Check the stride and motion reported per '
            f'bag; train longer or on more varied recordings')


def _init_state(path: Path, config: TrainConfig) -> dict:
    """The checkpoint `path` for --init, refused unless its networks are this config's."""
    state = load_checkpoint(path)
    if not isinstance(state.get('config'), dict):
        raise UserError(f'--init {path}: no training config in it, so its networks cannot be '
                        f'checked against this run\'s')
    theirs = checkpoint_config(state['config'], f'--init {path}').model  # older layouts too
    differ = [f.name for f in dataclasses.fields(theirs)
              if getattr(theirs, f.name) != getattr(config.model, f.name)]
    if differ:
        raise UserError(f'--init {path}: its networks differ from this config\'s (model.'
                        f'{", model.".join(differ)}); train with its model: settings')
    if config.model.multi_frame and not any(k.startswith('teacher.')
                                            for k in state.get('objective', {})):
        raise UserError(f'--init {path} lacks the teacher network (exported weights keep only '
                        f'what inference needs): give a training checkpoint (OUT/last.pt or '
                        f'OUT/best.pt)')
    return state


def _save(path: Path, config: TrainConfig, objective, optimizer, step: int,
          state: dict) -> None:
    save_checkpoint(path, {'model': _model_section(config, state), 'config': to_dict(config),
                           'step': step, 'objective': objective.state_dict(),
                           'optimizer': optimizer.state_dict(), **state})


def _model_section(config: TrainConfig, state: dict) -> dict:
    """What inference reads (checkpoint.ModelSection), from the run's config and scale."""
    scale = state['scale']
    return ModelSection(config.model, (config.data.width, config.data.height), scale['metric'],
                        scale['median_distance_m'], state['focal_px'],
                        config.data.window_heights).to_dict()


def _save_if_best(out: Path, scores: dict, best: float, rank: int, writer, step: int,
                  config: TrainConfig, objective, optimizer, state: dict) -> float:
    """Log the held-out scores; write best.pt when the photometric loss is the lowest yet.
    Returns the best loss."""
    if writer:
        for key, value in scores.items():
            writer.add_scalar(key, value, step)
    loss = scores['val/photometric']
    if loss >= best:
        return best
    if rank == 0:  # the networks, without the optimiser's state: not for resuming
        save_checkpoint(out / BEST_NAME, {'model': _model_section(config, state),
                                          'config': to_dict(config), 'step': step,
                                          'objective': objective.state_dict(),
                                          **state, 'best_val': loss, 'val': scores})
    return loss


def _agreed(value: float, world: int, device: torch.device) -> float:
    """Rank 0's value on every process (the run's progress, measured on each rank's clock)."""
    if world == 1:
        return value
    shared = torch.tensor([value], device=device, dtype=torch.float64)
    dist.broadcast(shared, 0)
    return float(shared.item())


def _on_any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True on every process as soon as one has it true (a spent time budget, a non-finite
    loss), so that all stop at the same step and none waits in a collective for the rest."""
    if world == 1:
        return flag
    shared = torch.tensor([float(flag)], device=device)
    dist.all_reduce(shared, op=dist.ReduceOp.MAX)
    return bool(shared.item())


def _update_depth_bins(objective, teacher_depth: torch.Tensor, world: int) -> None:
    depth_range = objective.depth.cost_volume.depth_range
    new_range = updated_depth_range(depth_range, teacher_depth,
                                    objective.depth.config.min_depth)
    if world > 1:  # every rank must keep the same hypotheses
        dist.all_reduce(new_range)
        new_range /= world
    depth_range.copy_(new_range)


def _init_distributed(device: torch.device) -> tuple[int, int]:
    """torchrun sets WORLD_SIZE/RANK; then the process group for `device`."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world == 1:
        return 0, 1
    dist.init_process_group(distributed_backend(device))
    return dist.get_rank(), world


def distributed_backend(device: torch.device) -> str:
    """NCCL for a run on CUDA devices, gloo for one on the CPU: the collectives run on the
    run's tensors, which NCCL cannot take from the CPU (--device cpu on a GPU machine)."""
    return 'nccl' if device.type == 'cuda' else 'gloo'


def _tensorboard(out: Path, rank: int):
    if rank != 0:
        return None
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(out / 'tensorboard'))


def _colorize(depth: torch.Tensor) -> torch.Tensor:
    """(1, H, W) depth -> (3, H, W) inverse-depth picture in [0, 1] for TensorBoard."""
    inverse = 1 / depth.float().clamp(min=1e-3)
    inverse = (inverse - inverse.min()) / (inverse.max() - inverse.min() + 1e-9)
    return torch.cat([inverse, inverse ** 2, (1 - inverse) * 0.5], 0).clamp(0, 1)
