"""Atomic outputs: complete or absent, and as readable as a file the user creates directly."""
import os
import stat

import pytest

from hybrid_depth_core import atomic
from hybrid_depth_core.atomic import new_file, new_output_directory
from hybrid_depth_core.errors import UserError


@pytest.mark.parametrize('umask, file_mode', [(0o022, 0o644), (0o077, 0o600)])
def test_new_file_gets_the_umask_mode_not_a_private_one(tmp_path, monkeypatch, umask, file_mode):
    monkeypatch.setattr(atomic, '_UMASK', umask)
    with new_file(tmp_path / 'model.pt') as file:
        file.write(b'weights')
    assert (tmp_path / 'model.pt').read_bytes() == b'weights'
    assert stat.S_IMODE((tmp_path / 'model.pt').stat().st_mode) == file_mode


def test_new_output_directory_gets_the_umask_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, '_UMASK', 0o022)
    with new_output_directory(tmp_path / 'bag') as staging:
        staging.mkdir()
        (staging / 'bag.mcap').write_bytes(b'x')
    assert stat.S_IMODE((tmp_path / 'bag').stat().st_mode) == 0o755
    assert sorted(os.listdir(tmp_path)) == ['bag']  # no staging leftovers


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    (tmp_path / 'model.pt').write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with new_file(tmp_path / 'model.pt') as file:
            file.write(b'half')
            raise RuntimeError('killed')
    assert (tmp_path / 'model.pt').read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['model.pt']


def test_new_output_directory_refuses_an_existing_path(tmp_path):
    (tmp_path / 'bag').mkdir()
    with pytest.raises(UserError, match='already exists'):
        with new_output_directory(tmp_path / 'bag'):
            pass


@pytest.mark.parametrize('make_bad, problem', [
    (lambda tmp: (tmp / 'out').mkdir(), 'is a directory'),
    (lambda tmp: (tmp / 'file').write_text('x'), 'cannot write'),
])
def test_an_unwritable_output_is_one_error_naming_it(tmp_path, make_bad, problem):
    make_bad(tmp_path)
    target = tmp_path / 'out' if problem == 'is a directory' else tmp_path / 'file' / 'out'
    with pytest.raises(UserError, match=problem) as error:
        with new_file(target) as file:
            file.write(b'x')
    assert str(target) in str(error.value)


def test_new_output_directory_that_got_nothing_is_one_error_and_leaves_nothing(tmp_path):
    with pytest.raises(UserError, match='nothing was written'):
        with new_output_directory(tmp_path / 'bag'):
            pass
    assert list(tmp_path.iterdir()) == []  # no output, no staging directory
