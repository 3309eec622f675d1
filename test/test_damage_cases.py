"""Damaged or misdirected input (issue 35): each case ends with one line naming the input and
the problem, a non-zero exit where nothing usable came of it, nothing written under the output's
name and the inputs unchanged; or, for a damaged cache, a warning and the cache made again."""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hybrid_depth_core.networks.checkpoint import load_checkpoint
from hybrid_depth_core.datasets.bag_dataset import BagSource, load_hints, load_recording
from hybrid_depth_core.synthetic.bag_writer import write_drive_bag
from hybrid_depth_core.synthetic import DriveConfig, SyntheticDrive
from hybrid_depth_core.training import trainer
from hybrid_depth_ros.cli import main
from hybrid_depth_ros.cli.evaluate import write_json

HERE = Path(__file__).resolve().parent
LATIN_1 = 'data:\n  width: 128  # caf\xe9 au lait\n'.encode('latin-1')  # byte 0xe9 at 25
INTRINSICS_LATIN_1 = 'fx: 100\nfy: 100\ncx: 64\ncy: 32\nwidth: 128\nheight: 64  # \xb5m\n'


def run_cli(capsys, *args) -> tuple[int, str]:
    """The command in this process, as the console script runs it: (exit status, stderr)."""
    code = main([str(arg) for arg in args])
    return code, capsys.readouterr().err


def one_error_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'hybrid-depth {command}: error: '), stderr
    assert 'Traceback' not in stderr
    return lines[0]


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    drive = SyntheticDrive(DriveConfig(width=128, height=64, frames=5, seed=3))
    path = tmp_path_factory.mktemp('bags') / 'drive'
    write_drive_bag(drive, path, progress=False)
    return path


def test_files_that_are_not_utf8_are_named_not_a_traceback(tmp_path, capsys, bag):
    config = tmp_path / 'train.yaml'
    config.write_bytes(LATIN_1)
    code, err = run_cli(capsys, 'train', '--config', config, '--out', tmp_path / 'run')
    line = one_error_line(err, 'train')
    assert code == 1 and f'config {config} is not UTF-8 text (byte 0xe9 at offset 25)' in line
    intrinsics = tmp_path / 'camera.yaml'
    intrinsics.write_bytes(INTRINSICS_LATIN_1.encode('latin-1'))
    code, err = run_cli(capsys, 'train', '--bag', bag, '--intrinsics', intrinsics, '--out',
                        tmp_path / 'run', '--max-steps', 1, f'data.cache_dir={tmp_path / "c"}')
    assert code == 1 and f'intrinsics {intrinsics} is not UTF-8 text' in one_error_line(
        err, 'train')
    # The same file in UTF-8 is read, and its comment's character kept.
    intrinsics.write_text(INTRINSICS_LATIN_1, encoding='utf-8')
    from hybrid_depth_core.datasets.image_folder import read_intrinsics
    assert read_intrinsics(intrinsics)[0].width == 128
    params = tmp_path / 'node.yaml'
    params.write_bytes(b'hybrid_depth:\n  ros__parameters:\n    device: "\xff"\n')
    code, err = run_cli(capsys, 'node', '--params-file', params)
    assert code == 1 and f'parameter file {params} is not UTF-8 text' in one_error_line(
        err, 'node')
    split = tmp_path / 'split.txt'
    split.write_bytes(b'2011_09_26/2011_09_26_drive_0002_sync 0000000069 l\xa0\n')
    from hybrid_depth_core.datasets.kitti import read_split
    from hybrid_depth_core.errors import UserError
    with pytest.raises(UserError, match=f'split file {split} is not UTF-8 text'):
        read_split(split)
    # Nothing was written: no run directory, no frame cache.
    assert not (tmp_path / 'run').exists() and not (tmp_path / 'c').exists()


def test_evaluate_json_that_cannot_be_written_is_refused_before_evaluating(
        tmp_path, capsys, monkeypatch):
    # The checkpoint does not exist: an error about --json shows the check came first.
    checkpoint = tmp_path / 'missing.pt'
    folder = tmp_path / 'results'
    folder.mkdir()
    code, err = run_cli(capsys, 'evaluate', '--checkpoint', checkpoint, '--json', folder)
    assert code == 1 and f'--json {folder} is a directory' in one_error_line(err, 'evaluate')
    assert list(folder.iterdir()) == []
    checkpoint.write_bytes(b'weights')
    code, err = run_cli(capsys, 'evaluate', '--checkpoint', checkpoint, '--json', checkpoint)
    assert code == 1 and f'--json {checkpoint} is an input' in one_error_line(err, 'evaluate')
    assert checkpoint.read_bytes() == b'weights'
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / 'locked'
        locked.mkdir(mode=0o555)
        code, err = run_cli(capsys, 'evaluate', '--checkpoint', checkpoint, '--json',
                            locked / 'scores.json')
        assert code == 1 and f'cannot write to {locked}' in one_error_line(err, 'evaluate')
    # A write that fails at the end (a disk filled meanwhile) is one line too, and leaves
    # neither the file nor its temporary.

    def full_disk(fd):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'fsync', full_disk)
    from hybrid_depth_core.errors import UserError
    with pytest.raises(UserError, match='--json .*No space left on device.*printed above'):
        write_json(folder / 'scores.json', {'abs_rel': 0.1})
    assert list(folder.iterdir()) == []


def test_a_truncated_frame_cache_is_said_and_made_again(tmp_path, capsys, bag):
    cache = tmp_path / 'frames'
    source = BagSource(bag)
    recording = load_recording(source, 64, 64, cache, progress=False)
    hints = load_hints(source, recording, cache, progress=False)
    for pattern in ('*[!s].npz', '*.hints.npz'):
        [path] = cache.glob(pattern)
        whole = path.read_bytes()
        path.write_bytes(whole[:len(whole) // 2])  # a copy cut short, a full disk
    capsys.readouterr()
    again = load_recording(source, 64, 64, cache, progress=False)
    hints_again = load_hints(source, again, cache, progress=False)
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 2, out
    assert 'cached frames' in warnings[0] and 'decoding the bag again' in warnings[0]
    assert 'cached depth hints' in warnings[1] and 'tracking them again' in warnings[1]
    for warning, pattern in zip(warnings, ('*[!s].npz', '*.hints.npz')):
        [path] = cache.glob(pattern)
        assert str(path) in warning
    np.testing.assert_array_equal(again.rgb, recording.rgb)
    for found, expected in zip(hints_again.depths, hints.depths, strict=True):
        np.testing.assert_array_equal(found, expected)
    # Rewritten whole (no temporaries left): the next load reads it without a word.
    assert sorted(p.name.endswith('.partial') for p in cache.iterdir()) == [False, False]
    load_recording(source, 64, 64, cache, progress=False)
    load_hints(source, again, cache, progress=False)
    assert 'warning' not in capsys.readouterr().out


KERNEL_PROBE = textwrap.dedent('''
    import torch
    from hybrid_depth_core.networks import plane_sweep
    kernel = plane_sweep.fused_kernel()
    if kernel is None:
        print('NO KERNEL', plane_sweep._kernel_error)
    else:
        current, lookup = torch.rand(1, 8, 6, 10), torch.rand(1, 8, 6, 10)
        u, v = torch.rand(1, 4, 60) * 9, torch.rand(1, 4, 60) * 5
        torch.testing.assert_close(plane_sweep.fused_cost(kernel, current, lookup, u, v),
                                   plane_sweep.torch_cost(current, lookup, u, v))
        print('KERNEL OK')
''')


def test_a_build_killed_midway_leaves_nothing_later_starts_wait_on(tmp_path, monkeypatch):
    """What a killed build leaves (PyTorch's `lock` in its build directory, this module's lock
    file naming a process that is gone, its unfinished build directory), then two starts at
    once: both get a working kernel, compiled once, the leftovers cleared and said."""
    from hybrid_depth_core.networks import plane_sweep

    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path), OMP_NUM_THREADS='1')
    env.pop(plane_sweep.DISABLE_VARIABLE, None)
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    old_style = tmp_path / 'py_cpu' / 'hybrid_depth_plane_sweep_0123456789'
    old_style.mkdir(parents=True)
    (old_style / 'lock').touch()  # PyTorch's build lock, as a process killed in load() leaves
    cache = tmp_path / 'hybrid_depth'
    cache.mkdir()
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path))
    name = plane_sweep.kernel_name()
    assert plane_sweep.kernel_cache() == cache
    (cache / f'{name}.lock').write_text(f'{pid}\n')
    unfinished = cache / f'.{name}.build-{pid}-{plane_sweep._host()}-x1y2'
    unfinished.mkdir()
    (unfinished / 'lock').touch()
    (unfinished / 'plane_sweep.o').write_bytes(b'\x7fELF half')
    starts = [subprocess.Popen([sys.executable, '-c', KERNEL_PROBE], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for _ in range(2)]
    results = [start.communicate(timeout=540) for start in starts]
    for start, (out, err) in zip(starts, results):
        if 'NO KERNEL' in out and not os.environ.get('CI'):
            pytest.skip(f'no C++ toolchain: {out}')
        assert start.returncode == 0 and 'KERNEL OK' in out, out + err
    said = ''.join(err for _, err in results)
    assert said.count('compiling the fused plane-sweep kernel for this CPU') == 1, said
    assert said.count('waiting for process') <= 1, said  # the other start, said once
    assert said.count(f'removed the unfinished build of process {pid}') == 1, said
    assert not unfinished.exists()
    assert sorted(p.name for p in cache.iterdir()) == [f'{name}.lock', f'{name}.so']
    # A later start loads the build without compiling, waiting or a word.
    later = subprocess.run([sys.executable, '-c', KERNEL_PROBE], env=env, text=True,
                           capture_output=True, timeout=120)
    assert 'KERNEL OK' in later.stdout and later.stderr == '', later.stderr


def test_export_never_writes_onto_its_input(tmp_path, capsys):
    checkpoint = tmp_path / 'last.pt'
    checkpoint.write_bytes(b'a training checkpoint')
    (tmp_path / 'link.pt').symlink_to(checkpoint)
    os.link(checkpoint, tmp_path / 'hard.pt')
    (tmp_path / 'sub').mkdir()
    for flag in ('--weights', '--onnx'):
        for out in (checkpoint, tmp_path / 'link.pt', tmp_path / 'hard.pt',
                    tmp_path / 'sub' / '..' / 'last.pt'):
            code, err = run_cli(capsys, 'export', '--checkpoint', checkpoint, flag, out,
                                '--force')
            line = one_error_line(err, 'export')
            which = ('an input' if out == checkpoint
                     else f'the input {checkpoint} under another name')
            assert code == 1 and f'{flag} {out} is {which}; inputs are only read' in line
    assert checkpoint.read_bytes() == b'a training checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['hard.pt', 'last.pt', 'link.pt', 'sub']
    assert list((tmp_path / 'sub').iterdir()) == []
    from hybrid_depth_core.errors import UserError
    from hybrid_depth_core.deploy.export import export_weights
    with pytest.raises(UserError, match='under another name'):
        export_weights(tmp_path / 'link.pt', checkpoint)


def test_the_process_group_backend_follows_the_device_not_the_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # a GPU machine
    assert trainer.distributed_backend(torch.device('cpu')) == 'gloo'
    assert trainer.distributed_backend(torch.device('cuda', 0)) == 'nccl'


DDP_ON_CPU_PROBE = textwrap.dedent('''
    import sys
    from pathlib import Path
    import torch
    torch.cuda.is_available = lambda: True  # as on a GPU machine; the run asks for the CPU
    from hybrid_depth_core.training.config import load_config
    from hybrid_depth_core.training.trainer import train
    train(load_config(None, sys.argv[2:]), Path(sys.argv[1]), max_steps=1, device='cpu',
          progress=False)
''')


def test_torchrun_with_device_cpu_on_a_gpu_machine_trains_over_gloo(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text(DDP_ON_CPU_PROBE)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    command = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
               '--master_addr', '127.0.0.1', '--master_port', str(port), str(probe),
               str(tmp_path / 'run'), 'data.seeds=[3]', 'data.frames_per_drive=9',
               'data.width=96', 'data.height=64', 'data.frame_stride=1', 'batch_size=2',
               'num_workers=0', 'image_every=100']
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_checkpoint(tmp_path / 'run' / 'last.pt')['step'] == 1
