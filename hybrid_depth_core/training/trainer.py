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
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.atomic import check_output_directory
from hybrid_depth_core.networks.checkpoint import load_checkpoint, save_checkpoint
from hybrid_depth_core.training.checkpoints import (BEST_NAME, CHECKPOINT_NAME, check_start,
                                                    checkpoint_state, init_state, resume_state,
                                                    start_from_init)
from hybrid_depth_core.training.config import (TrainConfig, checkpoint_config, is_frozen,
                                               learning_rate)
from hybrid_depth_core.training.defaults import (FITTED_RANGE, fit_depth_range, measure_heading,
                                                 pose_prior, resolve, scale_of, training_focal)
from hybrid_depth_core.training.sampling import EpochSampler, epoch_loader
from hybrid_depth_core.training.validation import build_validation_set, validate
from hybrid_depth_core.networks.resnet import load_imagenet_weights
from hybrid_depth_core.training.losses import updated_depth_range
from hybrid_depth_core.training.objective import (SelfSupervisedObjective,
                                                  draw_matching_augmentation)


def train(config: TrainConfig, out: Path, max_steps: int | None = None,
          minutes: float | None = None, resume: bool = False, device: str = 'auto',
          progress: bool = True, init: Path | None = None) -> Path:
    """Train for `max_steps` steps, `minutes` of training time, or else `config.epochs` epochs;
    returns the final checkpoint. The config's automatic values are resolved first. `init`: a
    checkpoint whose networks this run starts from (a new schedule and optimiser: fine-tuning),
    instead of ImageNet or random weights."""
    out = Path(out)
    check_start(out, resume, init)
    check_output_directory(out, config.data.bags if config.data.source == 'bag' else ())
    device = pick_device(device)  # first: the process group's backend follows it
    rank, world = _init_distributed(device)
    config = resolve(config, device)
    torch.manual_seed(config.seed)
    start = init_state(init, config) if init is not None else None  # checked before the data
    resumed = load_checkpoint(out / CHECKPOINT_NAME, map_location=device) if resume else None
    talk = progress and rank == 0  # one process speaks for all
    data = _training_data(config, rank, world, talk)
    config = _depth_range(config, data.dataset, resumed or start, world, device, talk)
    objective = SelfSupervisedObjective(config.model, config.loss).to(device)
    if config.pretrained and start is None:  # --init brings its own weights
        _load_imagenet_encoders(objective, config.pretrained)
    # The fused kernel (CPU and CUDA, the devices pick_device gives) updates all parameters in
    # one pass: faster than the per-parameter loop on the CPU (docs/benchmarks.md).
    optimizer = torch.optim.Adam([p for p in objective.parameters() if p.requires_grad],
                                 lr=config.learning_rate, fused=True)
    step, elapsed, best = 0, 0.0, math.inf
    if resume:
        step, elapsed, best = resume_state(out, resumed, config, objective, optimizer)
    elif start is not None:
        start_from_init(objective, init, start, talk)
    else:
        _start_along_the_heading(objective, data, talk)
    run = _Run(config, out, data, objective, optimizer, device, rank, world,
               (step, elapsed, best), max_steps, minutes, talk)
    while run.step < run.total_steps:
        for batch in run.epoch_batches():
            if run.budget_spent():
                break  # the budget is spent: finish() saves
            run_progress = run.agreed_progress()
            run.freeze_when_due(run_progress)
            batch, logs, outputs = run.take_step(batch, run_progress)
            run.log(batch, logs, outputs)
            run_time = run.elapsed()  # before a validation: what this step's checkpoints record
            epoch_ends = run.step % data.steps_per_epoch == 0
            if epoch_ends and data.validation is not None:
                run.validate_and_keep_best(run_time)
            if run.step % config.checkpoint_every == 0:
                run.save_last(run_time)
            if epoch_ends:
                break  # the epoch's last batch: the next epoch re-shuffles
    run.finish()
    return out / CHECKPOINT_NAME


@dataclasses.dataclass
class _Data:
    """The training samples, their order, the held-out set (None without one), and what every
    checkpoint records of the data: its scale and its camera's focal length."""
    dataset: torch.utils.data.Dataset
    sampler: EpochSampler
    steps_per_epoch: int
    validation: torch.utils.data.Dataset | None
    scale: dict
    focal_px: tuple[float, float]


def _training_data(config: TrainConfig, rank: int, world: int, talk: bool) -> _Data:
    """This process's share of the training data, and the held-out set; what the data gives
    of the scale said when `talk`."""
    dataset = build_dataset(config.data, config.augment, config.seed, progress=talk,
                            turns=config.model.turn_prior, hints=config.loss.hints > 0)
    steps_per_epoch = len(dataset) // world // config.batch_size
    if steps_per_epoch == 0:
        raise UserError(f'{len(dataset)} samples are fewer than one batch of '
                        f'{config.batch_size} per process (record more, or lower '
                        f'--frame-stride or batch_size)')
    sampler = EpochSampler(len(dataset), config.seed, rank, world,
                           per_rank=steps_per_epoch * config.batch_size)
    validation = build_validation_set(config, dataset, progress=talk)
    scale = scale_of(config, dataset)
    focal = training_focal(dataset)
    if talk:
        print(f'depth in metres: the velocity loss has {scale["pairs_with_motion"]} training '
              f'pairs with measured motion (median {scale["median_distance_m"]:.3f} m)'
              if scale['metric'] else
              'depth up to scale: no measured motion to learn metres from (data.motion, '
              'loss.velocity)')
    return _Data(dataset, sampler, steps_per_epoch, validation, scale, focal)


def _depth_range(config: TrainConfig, dataset, checkpoint: dict | None, world: int,
                 device: torch.device, talk: bool) -> TrainConfig:
    """`config` with the depth range the run trains in: with `fit_depth_range`, the range of
    `checkpoint` (--resume, --init: the network's output is in it), else the one fitted to the
    data (defaults.fit_depth_range; rank 0's on every rank); otherwise the config's."""
    if not config.fit_depth_range:
        return config
    if checkpoint is not None:
        theirs = checkpoint_config(checkpoint['config'], 'the checkpoint').model
        model = dataclasses.replace(config.model,
                                    **{name: getattr(theirs, name) for name in FITTED_RANGE})
        return dataclasses.replace(config, model=model)
    model, line = fit_depth_range(config.model, dataset)
    model = dataclasses.replace(model, **{name: _agreed(getattr(model, name), world, device)
                                          for name in FITTED_RANGE})
    if talk and line is not None:
        print(line)
    return dataclasses.replace(config, model=model)


def _load_imagenet_encoders(objective, pretrained) -> None:
    """ImageNet weights into the encoders of every network of `objective` (config.pretrained:
    'download' or a local file)."""
    source = True if pretrained == 'download' else pretrained
    for model in (objective.depth, objective.pose, objective.teacher):
        if model is not None:
            load_imagenet_weights(model.encoder, source)


def _start_along_the_heading(objective, data: _Data, talk: bool) -> None:
    """A new run's pose network starts moving along the camera's measured heading (by the
    data's median distance a frame, where it has one): defaults.pose_prior."""
    heading, pairs = measure_heading(data.dataset)
    prior = pose_prior(heading, data.scale['median_distance_m'])
    objective.pose.decoder.start_moving(prior)
    if talk:
        print(f'camera heading from {pairs} frame pairs {np.round(heading, 2).tolist()} '
              f'(length 1: all agree): the pose network starts '
              + (f'moving {np.round(prior, 2).tolist()} a frame' if prior.any()
                 else 'standing still'))


class _Run:
    """A run under way: where it is (its step, lowest held-out loss and freeze), its budget,
    its logs, and the steps train() takes with it: a training step, the freeze, the logs, a
    validation, a checkpoint and the end of the run."""

    def __init__(self, config: TrainConfig, out: Path, data: _Data, objective, optimizer,
                 device: torch.device, rank: int, world: int, start: tuple[int, float, float],
                 max_steps: int | None, minutes: float | None, talk: bool):
        self.config, self.out, self.data = config, out, data
        self.objective, self.optimizer = objective, optimizer
        self.device, self.rank, self.world, self.talk = device, rank, world, talk
        self.step, elapsed, self.best = start
        self.minutes = minutes
        self.wrapped = objective
        if world > 1:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                objective, device_ids=[device.index] if device.type == 'cuda' else None,
                find_unused_parameters=True)  # frozen teacher/pose and zero-cost-volume steps
        self.precision = autocast(device, config.precision)
        self.total_steps = (max_steps if max_steps is not None
                            else math.inf if minutes is not None
                            else config.epochs * data.steps_per_epoch)
        self.writer = _tensorboard(out, rank)
        self.bar = tqdm(total=None if minutes is not None else self.total_steps,
                        initial=self.step, desc='training', unit='step', disable=not talk)
        self.started = time.monotonic() - elapsed  # earlier sessions' training time counts
        self.last_log, self.logged, self.since_log = time.monotonic(), {}, 0
        self.val_postfix = {}
        self.frozen = None  # not yet set: the first step sets the modes

    def epoch_batches(self) -> torch.utils.data.DataLoader:
        """The batches from this step to the end of its epoch."""
        self.frozen = None  # a new epoch sets the modes again
        return epoch_loader(self.data.dataset, self.data.sampler, self.config, self.step,
                            self.data.steps_per_epoch, pin_memory=self.device.type == 'cuda')

    def budget_spent(self) -> bool:
        """Whether the run has taken its steps or (on any process) used its minutes; the run
        then ends at this step."""
        time_is_up = (self.minutes is not None
                      and time.monotonic() - self.started > 60 * self.minutes)
        if self.step >= self.total_steps or _on_any_rank(time_is_up, self.world, self.device):
            self.total_steps = self.step
            return True
        return False

    def agreed_progress(self) -> float:
        """The fraction of the run done (of its steps, or of its minutes), rank 0's on every
        process."""
        if self.minutes is not None:
            done = min(1.0, (time.monotonic() - self.started) / (60 * self.minutes))
        else:
            done = self.step / self.total_steps  # ManyDepth's epoch >= 15 of 20 is 0.75
        return _agreed(done, self.world, self.device)

    def freeze_when_due(self, run_progress: float) -> None:
        # ManyDepth freezes its teacher and pose network; a single-frame model has no teacher
        # and keeps training its pose network throughout, as Monodepth2 does. The optimiser
        # carries on (frozen parameters get no gradient, so Adam skips them): ManyDepth's
        # trainer rebuilds it here, which also restarts its learning-rate schedule
        # (docs/benchmarks.md measures both).
        frozen = is_frozen(self.config, run_progress)
        if self.frozen != frozen:
            self.frozen = frozen
            self.objective.set_mode(frozen)

    def take_step(self, batch: dict, run_progress: float) -> tuple[dict, dict, dict]:
        """One optimiser step on `batch` at the schedule's learning rate; returns the batch on
        the device, the loss terms and the networks' outputs."""
        config, step = self.config, self.step
        torch.manual_seed(config.seed * 1_000_003 + step)
        for group in self.optimizer.param_groups:
            group['lr'] = learning_rate(config, run_progress)
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        augmentation = draw_matching_augmentation(
            config.loss, config.batch_size,
            torch.Generator().manual_seed((config.seed * 1_000_003 + step) * 1_009 + self.rank))
        with self.precision:
            loss, logs, outputs = self.wrapped(batch, augmentation, self.frozen)
        if _on_any_rank(not math.isfinite(loss.item()), self.world, self.device):
            raise RuntimeError(f'loss became {loss.item()} at step {step} (in one of '
                               f'{self.world} processes); the last good checkpoint is '
                               f'{self.out / CHECKPOINT_NAME}')
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.objective.teacher is not None and not self.frozen:
            _update_depth_bins(self.objective, outputs['teacher_depth'], self.world)
        self.step += 1
        return batch, logs, outputs

    def log(self, batch: dict, logs: dict, outputs: dict) -> None:
        """The step's loss terms, averaged over `log_every` steps, to the progress bar and
        TensorBoard; a depth picture every `image_every` steps."""
        step, config = self.step, self.config
        self.since_log += 1
        for key, value in logs.items():
            self.logged[key] = self.logged.get(key, 0.0) + float(value.detach())
        self.bar.update(1)
        if step % config.log_every == 0 or step == self.total_steps:
            now = time.monotonic()
            rate = (config.batch_size * self.world * self.since_log
                    / max(now - self.last_log, 1e-9))
            averages = {k: v / self.since_log for k, v in self.logged.items()}
            self.bar.set_postfix(loss=f'{averages["loss/total"]:.4f}', img_s=f'{rate:.1f}',
                                 **self.val_postfix)
            if self.writer:
                for key, value in averages.items():
                    self.writer.add_scalar(key, value, step)
                self.writer.add_scalar('lr', self.optimizer.param_groups[0]['lr'], step)
                self.writer.add_scalar('images_per_second', rate, step)
            self.logged, self.since_log, self.last_log = {}, 0, now
        if self.writer and step % config.image_every == 0:
            self.writer.add_image('depth', _colorize(outputs['depth'][0]), step)
            self.writer.add_image('image', batch[('color', 0, 0)][0], step)

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions' included."""
        return time.monotonic() - self.started

    def validate_and_keep_best(self, run_time: float) -> None:
        """Score the held-out set and log the scores; write best.pt (the networks, without the
        optimiser's state: not for resuming) when the photometric loss is the lowest yet."""
        scores = validate(self.objective, self.data.validation, self.device, self.precision)
        self.objective.set_mode(self.frozen)
        if self.writer:
            for key, value in scores.items():
                self.writer.add_scalar(key, value, self.step)
        self.val_postfix = {'val': f'{scores["val/photometric"]:.4f}'}
        if scores['val/photometric'] >= self.best:
            return
        self.best = scores['val/photometric']
        if self.rank == 0:
            save_checkpoint(self.out / BEST_NAME, self._state(run_time, scores=scores))

    def save_last(self, run_time: float) -> None:
        """last.pt, with the optimiser's state, to resume from (written by rank 0)."""
        if self.rank == 0:
            save_checkpoint(self.out / CHECKPOINT_NAME,
                            self._state(run_time, optimizer=self.optimizer))

    def _state(self, run_time: float, optimizer=None, scores: dict | None = None) -> dict:
        return checkpoint_state(self.config, self.objective, self.step, run_time, self.best,
                                self.data.scale, self.data.focal_px, optimizer, scores)

    def finish(self) -> None:
        """The last, partial epoch's validation, last.pt, a collapsed teacher reported; the
        logs closed and the process group left."""
        self.bar.close()
        run_time = self.elapsed()
        if self.data.validation is not None and self.step % self.data.steps_per_epoch:
            self.validate_and_keep_best(run_time)
        self.save_last(run_time)
        warning = collapse_warning(self.objective) if self.rank == 0 else None
        if warning and self.talk:
            print(f'warning: {warning}')
        if self.writer:
            self.writer.close()
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()


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
