"""The ROS install path for real: `colcon build` of this package in a scratch workspace yields
the layout `ros2 run` / `ros2 launch` rely on."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name('colcon')
PACKAGE = 'hybrid_depth_ros'
# What a checkout has that is not part of the package source.
NOT_SOURCE = shutil.ignore_patterns('.git', '.venv', 'out', 'build', 'install', 'log',
                                    '__pycache__', '*.egg-info', '.pytest_cache')


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    if not COLCON.exists():
        pytest.skip(f'colcon is not installed next to {sys.executable} (make setup installs it)')
    ws = tmp_path_factory.mktemp('colcon_ws')
    shutil.copytree(REPO, ws / 'src' / PACKAGE, ignore=NOT_SOURCE)
    listing = subprocess.run([str(COLCON), 'list'], cwd=ws, capture_output=True, text=True)
    build = subprocess.run([str(COLCON), 'build', '--event-handlers', 'console_direct-'],
                           cwd=ws, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    return ws, listing.stdout


def test_colcon_sees_an_ament_python_package(workspace):
    _, listing = workspace
    # catkin_pkg parsed package.xml; otherwise colcon silently treats it as plain python.
    assert listing.split() == [PACKAGE, f'src/{PACKAGE}', '(ros.ament_python)']


def test_install_tree_has_the_ros_layout(workspace):
    ws, _ = workspace
    prefix = ws / 'install' / PACKAGE
    executable = prefix / 'lib' / PACKAGE / 'hybrid-depth'
    assert executable.is_file() and os.access(executable, os.X_OK)
    share = prefix / 'share' / PACKAGE
    assert (share / 'package.xml').read_text() == (REPO / 'package.xml').read_text()
    for installed in ('launch/depth.launch.py', 'config/depth_node.yaml', 'config/demo.yaml',
                      'config/fastdds_large_images.xml', 'rviz/depth.rviz',
                      'models/hybrid_synthetic.pt', 'models/README.md'):
        assert (share / installed).is_file(), installed
    # The fused matching kernel's source is built on first use: it must be installed.
    assert list(prefix.rglob('hybrid_depth_core/networks/plane_sweep.cpp')), 'plane_sweep.cpp'
    node = prefix / 'lib' / PACKAGE / 'depth_node'
    assert node.is_file() and os.access(node, os.X_OK)
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / PACKAGE).is_file()


def test_setup_bash_sets_the_environment_and_the_installed_command_runs(workspace):
    ws, _ = workspace
    prefix = ws / 'install' / PACKAGE
    # `python -S`: no site-packages, so only the install tree (via setup.bash's PYTHONPATH) and
    # the standard library can be imported, not this checkout's editable install.
    script = (f'source {ws}/install/setup.bash && echo "$AMENT_PREFIX_PATH" && '
              f'{sys.executable} -S {prefix}/lib/{PACKAGE}/hybrid-depth --version && '
              f'{sys.executable} -S -c "import hybrid_depth_ros.cli as c; print(c.__file__)" && '
              f'{sys.executable} -S -c "from hybrid_depth_ros.shipped_files import shipped; '
              f'print(shipped(\'models/hybrid_synthetic.pt\'))"')
    env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': str(ws)}
    result = subprocess.run(['bash', '-c', script], env=env, cwd=ws, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ament_prefix_path, version, module_file, model = result.stdout.split('\n')[:4]
    assert str(prefix) in ament_prefix_path.split(':')
    assert version.startswith('hybrid-depth ')
    assert module_file.startswith(str(prefix))  # the installed copy, not this checkout
    # `hybrid-depth demo` finds the shipped model in the install's share/, from any directory.
    assert model == str(prefix / 'share' / PACKAGE / 'models' / 'hybrid_synthetic.pt')
