"""`hybrid-depth` as a user runs it: the installed console script, in a subprocess."""
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from hybrid_depth_ros.cli import parse_arguments

# The console script next to this interpreter (the venv's), else `python -m`.
_SCRIPT = Path(sys.executable).with_name('hybrid-depth')
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, '-m', 'hybrid_depth_ros.cli']


def run(*args, cwd=None):
    return subprocess.run(COMMAND + [str(a) for a in args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_sample_writes_a_bag_and_says_what_it_wrote(tmp_path):
    out = tmp_path / 'nested' / 'drive'
    result = run('sample', out, '--frames', 4, '--width', 64, '--height', 32, '--seed', 3)
    assert result.returncode == 0, result.stderr
    assert f'wrote {out}' in result.stdout
    for topic in ('/camera/image_raw', '/camera/camera_info', '/camera/depth_gt', '/camera/pose',
                  '/tf', '/tf_static'):
        assert topic in result.stdout
    with AnyReader([out]) as reader:
        assert reader.message_count == 4 * 5 + 1  # the mount, once on /tf_static
        assert {c.topic for c in reader.connections} >= {'/camera/image_raw', '/camera/depth_gt'}


def test_sample_records_odometry_and_train_refuses_contradicting_motion_flags(tmp_path):
    out = tmp_path / 'odom'
    result = run('sample', out, '--frames', 3, '--width', 64, '--height', 32, '--motion', 'odom')
    assert result.returncode == 0, result.stderr
    with AnyReader([out]) as reader:
        assert {c.topic for c in reader.connections} >= {'/odom', '/tf_static'}
        assert not {'/tf', '/camera/pose'} & {c.topic for c in reader.connections}
    result = run('train', '--bag', out, '--out', tmp_path / 'run', '--no-motion',
                 '--motion-topic', '/odom')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert '--no-motion ignores motion' in result.stderr


def test_existing_output_is_refused_without_a_traceback(tmp_path):
    out = tmp_path / 'drive'
    out.mkdir()
    result = run('sample', out, '--frames', 1)
    assert result.returncode == 1
    assert 'already exists' in result.stderr and str(out) in result.stderr
    assert 'Traceback' not in result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize('args, message', [
    (['--frames', '0'], 'argument --frames: must be >= 1, got 0'),
    (['--width', '8'], 'argument --width: must be >= 16, got 8'),
    (['--height', 'tall'], "argument --height: expected an integer, got 'tall'"),
    (['--storage', 'bag'], "argument --storage: invalid choice: 'bag'"),
    (['--compressed', '--jpeg-quality', '101'], '--jpeg-quality must be in [1, 100], got 101'),
])
def test_bad_arguments_give_a_clear_error(tmp_path, args, message):
    result = run('sample', tmp_path / 'drive', *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'drive').exists()


def test_unwritable_output_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    result = run('sample', blocker / 'drive', '--frames', 1)
    assert result.returncode == 1
    assert 'cannot create output' in result.stderr and 'Traceback' not in result.stderr


def _start_long_sample_and_wait_until_mid_write(out: Path) -> subprocess.Popen:
    # A shell's background jobs inherit SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: give the command the default, as an interactive terminal does.
    process = subprocess.Popen(COMMAND + ['sample', str(out), '--frames', '500'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        written = [f for f in out.parent.glob(f'.{out.name}.partial-*/**/*')
                   if f.is_file() and f.stat().st_size > 1_000_000]
        if written:
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError('the sample command never started writing')


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_termination_mid_write_removes_the_partial_bag(tmp_path, sig):
    out = tmp_path / 'drive'
    process = _start_long_sample_and_wait_until_mid_write(out)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + sig
    assert 'partial output removed' in stderr and 'Traceback' not in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_killed_run_never_leaves_a_bag_under_the_final_name(tmp_path):
    out = tmp_path / 'drive'
    process = _start_long_sample_and_wait_until_mid_write(out)
    process.kill()  # SIGKILL: no cleanup possible
    process.communicate(timeout=60)
    assert not out.exists()
    # What is left is hidden and named for what it is.
    assert all(p.name.startswith('.drive.partial-') for p in tmp_path.iterdir())


def test_help_lists_the_sample_command():
    result = run('--help')
    assert result.returncode == 0 and 'sample' in result.stdout


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
def test_makefile_setup_does_nothing_the_second_time():
    repo = Path(__file__).resolve().parents[1]
    if Path(sys.prefix).resolve() != (repo / '.venv').resolve():
        pytest.skip('tests are not running in the virtual environment `make setup` manages')
    first = subprocess.run(['make', 'setup'], cwd=repo, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run(['make', '-n', 'setup'], cwd=repo, capture_output=True, text=True)
    assert second.returncode == 0
    assert 'pip install' not in second.stdout  # up to date: nothing to reinstall


WITHOUT_ROS = '''
import sys
ROS = ('rclpy', 'rcl_interfaces', 'sensor_msgs', 'std_msgs', 'builtin_interfaces',
       'diagnostic_msgs')


class NoRos:
    """Imports of ROS 2's Python packages fail, as where ROS 2 is not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ROS:
            raise ImportError(f'No module named {name!r}')


sys.meta_path.insert(0, NoRos())
from hybrid_depth_ros.cli import main
sys.exit(main(sys.argv[1:]))
'''


def test_commands_that_need_no_ros_run_where_ros_is_missing(tmp_path):
    def without_ros(*args):
        return subprocess.run([sys.executable, '-c', WITHOUT_ROS, *map(str, args)],
                              capture_output=True, text=True, timeout=120)
    result = without_ros('sample', tmp_path / 'bag', '--frames', 3, '--width', 64, '--height', 32)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'bag' / 'metadata.yaml').is_file()
    for command in (['node'], ['play', tmp_path / 'bag']):
        result = without_ros(*command)
        assert result.returncode == 1
        assert result.stderr.startswith(f'hybrid-depth {command[0]}: error: ROS 2 Python '
                                        f'packages are missing'), result.stderr


def test_an_error_is_the_last_line_even_with_a_progress_bar_open(monkeypatch, capsys):
    import gc

    from tqdm import tqdm

    from hybrid_depth_core.errors import UserError
    from hybrid_depth_ros import cli
    from hybrid_depth_ros.cli import profile

    def fails_midway(args):
        bar = tqdm(total=10, desc='working')
        bar.update(3)
        raise UserError('input.bag: damaged at frame 3')
    monkeypatch.setattr(profile, 'run', fails_midway)
    assert cli.main(['profile']) == 1
    gc.collect()  # where an open bar would redraw itself
    lines = [line for line in capsys.readouterr().err.replace('\r', '\n').splitlines() if line]
    assert lines[-1] == 'hybrid-depth profile: error: input.bag: damaged at frame 3'
    assert any('working' in line and '3/10' in line for line in lines[:-1])


def test_overrides_may_stand_among_the_options_and_other_strays_are_refused(capsys):
    args = parse_arguments(['train', '--config', 'c.yaml', 'data.width=192', '--out', 'o',
                            'data.height=64', '--minutes', '5', 'data.width=320'])
    assert (str(args.out), args.minutes) == ('o', 5.0)
    assert args.overrides == ['data.width=192', 'data.height=64', 'data.width=320']  # in order
    for stray in (['--out', 'o', 'a=1', '--bogus'], ['a=1', '--out', 'o', 'extra']):
        with pytest.raises(SystemExit):
            parse_arguments(['train', *stray])
        assert f'unrecognized arguments: {stray[-1]}' in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a command without overrides takes none
        parse_arguments(['export', '--checkpoint', 'c.pt', '--weights', 'w.pt', 'a=1'])
    assert 'unrecognized arguments: a=1' in capsys.readouterr().err
