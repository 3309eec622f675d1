"""The training loop, readable top to bottom: data, models, optimiser, steps, checkpoints.

Repeatability: data order comes from (seed, epoch), augmentation from (seed, epoch, index), and
the torch RNG is re-seeded from (seed, step) before every step, so a run resumed from a
checkpoint takes exactly the steps the uninterrupted run would have taken.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from hybrid_depth_core.data.datasets import build_dataset
from hybrid_depth_core.device import autocast, pick_device
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.training.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.training.config import TrainConfig, learning_rate, to_dict
from hybrid_depth_core.networks.resnet import load_imagenet_weights
from hybrid_depth_core.losses import updated_depth_range
from hybrid_depth_core.training.objective import (SelfSupervisedObjective,
                                                  draw_matching_augmentation)

CHECKPOINT_NAME = 'last.pt'


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


def train(config: TrainConfig, out: Path, max_steps: int | None = None,
          minutes: float | None = None, resume: bool = False, device: str = 'auto',
          progress: bool = True) -> Path:
    """Train until `max_steps`, `minutes` or `config.epochs`; returns the final checkpoint."""
    out = Path(out)
    checkpoint_path = out / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise UserError(f'{checkpoint_path} exists: pass --resume to continue it, or choose '
                        f'another --out')
    if resume and not checkpoint_path.exists():
        raise UserError(f'--resume: no checkpoint at {checkpoint_path}')
    rank, world = _init_distributed()
    device = pick_device(device)
    torch.manual_seed(config.seed)

    dataset = build_dataset(config.data, config.augment, config.seed,
                            progress=progress and rank == 0)
    steps_per_epoch = len(dataset) // world // config.batch_size
    if steps_per_epoch == 0:
        raise UserError(f'{len(dataset)} samples are fewer than one batch of '
                        f'{config.batch_size} per process')
    sampler = EpochSampler(len(dataset), config.seed, rank, world,
                           per_rank=steps_per_epoch * config.batch_size)
    objective = SelfSupervisedObjective(config.model, config.loss).to(device)
    if config.pretrained:
        source = True if config.pretrained == 'download' else config.pretrained
        for model in (objective.depth, objective.pose, objective.teacher):
            if model is not None:
                load_imagenet_weights(model.encoder, source)
    # The fused kernel (CPU and CUDA, the devices pick_device gives) updates all parameters in
    # one pass: 3x faster than the per-parameter loop on the CPU.
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad],
                                 lr=config.learning_rate, fused=True)
    step = 0
    if resume:
        state = load_checkpoint(checkpoint_path, map_location=device)
        if state['config'] != to_dict(config):
            raise UserError(f'{checkpoint_path} was trained with a different config; resume '
                            f'with the same --config and overrides')
        objective.load_state_dict(state['objective'])
        optimizer.load_state_dict(state['optimizer'])
        step = state['step']
    wrapped = objective
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=True)  # frozen teacher/pose and zero-cost-volume steps
    precision = autocast(device, config.precision)

    total_steps = config.epochs * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    writer = _tensorboard(out, rank)
    bar = tqdm(total=total_steps, initial=step, desc='training', unit='step',
               disable=not progress or rank != 0)
    started, last_log, logged, since_log = time.monotonic(), time.monotonic(), {}, 0
    while step < total_steps:
        epoch, batch_in_epoch = divmod(step, steps_per_epoch)
        dataset.set_epoch(epoch)
        sampler.set_position(epoch, batch_in_epoch * config.batch_size)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True,
            num_workers=config.num_workers, pin_memory=device.type == 'cuda',
            persistent_workers=False)
        # ManyDepth freezes its teacher and pose network; a single-frame model has no teacher
        # and keeps training its pose network throughout, as Monodepth2 does. The optimiser
        # carries on (frozen parameters get no gradient, so Adam skips them): ManyDepth's
        # trainer rebuilds it here, which also restarts its learning-rate schedule
        # (docs/benchmarks.md measures both).
        frozen = objective.teacher is not None and epoch >= config.freeze_epoch
        objective.set_mode(frozen)
        for batch in loader:
            time_is_up = minutes is not None and time.monotonic() - started > 60 * minutes
            if step >= total_steps or _on_any_rank(time_is_up, world, device):
                total_steps = step  # budget spent: stop after saving
                break
            torch.manual_seed(config.seed * 1_000_003 + step)
            for group in optimizer.param_groups:
                group['lr'] = learning_rate(config, step, epoch)
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
                bar.set_postfix(loss=f'{averages["loss/total"]:.4f}', img_s=f'{rate:.1f}')
                if writer:
                    for key, value in averages.items():
                        writer.add_scalar(key, value, step)
                    writer.add_scalar('lr', optimizer.param_groups[0]['lr'], step)
                    writer.add_scalar('images_per_second', rate, step)
                logged, since_log, last_log = {}, 0, now
            if writer and step % config.image_every == 0:
                writer.add_image('depth', _colorize(outputs['depth'][0]), step)
                writer.add_image('image', batch[('color', 0, 0)][0], step)
            if rank == 0 and step % config.checkpoint_every == 0:
                _save(checkpoint_path, config, objective, optimizer, step)
            if step % steps_per_epoch == 0:
                break  # the epoch's last batch: the next epoch re-shuffles (and may freeze)
    bar.close()
    if rank == 0:
        _save(checkpoint_path, config, objective, optimizer, step)
    if writer:
        writer.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return checkpoint_path


def _save(path: Path, config: TrainConfig, objective, optimizer, step: int) -> None:
    save_checkpoint(path, {'config': to_dict(config), 'step': step,
                           'objective': objective.state_dict(),
                           'optimizer': optimizer.state_dict()})


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


def _init_distributed() -> tuple[int, int]:
    """torchrun sets WORLD_SIZE/RANK; then NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world == 1:
        return 0, 1
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    dist.init_process_group(backend)
    return dist.get_rank(), world


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
