"""Outputs that appear complete or not at all: written under a temporary name, then renamed."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hybrid_depth_core.errors import UserError


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread of
    # ours creates files (a umask of 0 in that instant would apply to them).
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _default_mode(full: int) -> int:
    """`full` (0o666 files, 0o777 directories) less the umask: what open() and mkdir() would
    give. mkstemp/mkdtemp create private 0600/0700 entries, which would leave a shipped model
    or a bag unreadable to the user's other accounts (a ROS launch as another user)."""
    return full & ~_UMASK


@contextmanager
def new_output_directory(path: Path) -> Iterator[Path]:
    """Yield a path to write a new directory into; it becomes `path` only if the block succeeds.

    Refuses an existing `path`. The work happens in a hidden sibling staging directory (same
    file system, so the final rename is atomic); on any error or interrupt it is removed and
    `path` never exists half-written. Parent directories are created.
    """
    path = Path(path)
    try:
        exists = path.exists() or path.is_symlink()
        if not exists:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Bounded prefix: the staging name must fit where the final name fits.
            staging = Path(tempfile.mkdtemp(prefix=f'.{path.name[:100]}.partial-',
                                            dir=path.parent))
    except OSError as error:
        raise UserError(f'cannot create output {path}: {error.strerror}') from None
    if exists:
        raise UserError(f'{path} already exists; refusing to overwrite it (choose another path '
                        f'or remove it first)')
    try:
        # Same name inside the staging directory: some writers (rosbag2) name files after it.
        yield staging / path.name
        written = staging / path.name
        if not written.exists():
            raise UserError(f'nothing was written to {path}')
        os.chmod(written, _default_mode(0o777 if written.is_dir() else 0o666))
        if path.exists():
            raise UserError(f'{path} appeared while writing; left it untouched')
        os.rename(staging / path.name, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def new_file(path: Path) -> Iterator:
    """Yield a binary file to write; it replaces `path` only if the block succeeds (written and
    synced under a hidden temporary name beside it, then renamed), so readers and a crash
    mid-write only ever see the previous file or the complete new one."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f'{path} is a directory; give a file name')
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.partial',
                                             dir=path.parent)
    except OSError as error:
        raise UserError(f'cannot write {path}: {error.strerror}') from None
    try:
        os.fchmod(handle, _default_mode(0o666))
        with os.fdopen(handle, 'wb') as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        try:
            os.replace(temporary, path)
        except OSError as error:
            raise UserError(f'cannot write {path}: {error.strerror}') from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_output_directory(path: Path, inputs=()) -> None:
    """Before any work: a UserError unless `path` can be written as an output directory
    (it is a directory or can be made one, and it is writable) without writing into one of
    `inputs` (directories, such as rosbag2 recordings, that are only ever read)."""
    path = Path(path).absolute()
    for source in map(Path, inputs):
        source = source.absolute()
        if path == source:
            raise UserError(f'--out {path} is an input; inputs are only read, choose another '
                            f'directory')
        if source.is_dir() and source in path.parents:
            raise UserError(f'--out {path} is inside the input {source}; inputs are only read, '
                            f'choose an output directory outside it')
    if path.exists() and not path.is_dir():
        raise UserError(f'--out {path} exists and is not a directory')
    _check_writable(path, (path, *path.parents), '--out')


def check_output_file(path: Path, flag: str, inputs=()) -> None:
    """Before any work: a UserError unless `new_file` can write `path` (given as `flag`, e.g.
    '--json'): not a directory, its nearest existing parent a writable directory, and not one
    of `inputs` (files or directories that are only read): not the same file under another
    name (a symlink or hard link), not inside an input directory."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f'{flag} {path} is a directory; give a file name')
    for source in map(Path, inputs):
        if _same_file(path, source):
            which = ('an input' if path.absolute() == source.absolute()
                     else f'the input {source} under another name')
            raise UserError(f'{flag} {path} is {which}; inputs are only read, choose another '
                            f'file name')
        if source.is_dir() and source.resolve() in path.resolve().parents:
            raise UserError(f'{flag} {path} is inside the input {source}; inputs are only '
                            f'read, choose a file outside it')
    _check_writable(path, path.absolute().parents, flag)  # new_file makes missing parents


def _same_file(path: Path, other: Path) -> bool:
    """Whether the two names reach one file: the same inode (hard links, symlinks), or, where
    `path` does not exist yet, the same resolved path (a dangling symlink into `other`)."""
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them does not exist
        return path.resolve() == other.resolve()


def _check_writable(path: Path, candidates, flag: str) -> None:
    """A UserError unless the first existing one of `candidates` (`path` or its parents) is a
    directory this process may create entries in."""
    existing = next(parent for parent in candidates if parent.exists())
    if not existing.is_dir():
        raise UserError(f'{flag} {path}: {existing} is a file, not a directory')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f'{flag} {path}: cannot write to {existing} (permission denied)')
