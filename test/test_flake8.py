"""Code style as ament_flake8 checks it (configuration in setup.cfg: 99 columns)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_flake8_is_clean():
    result = subprocess.run([sys.executable, '-m', 'flake8', 'hybrid_depth_core',
                             'hybrid_depth_ros', 'test', 'benchmarks', 'setup.py'],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
