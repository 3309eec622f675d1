"""Opening a rosbag2 for reading, whatever happened to it, without ever writing to it.

- An sqlite3 bag whose recorder was killed before it closed the database keeps its last
  messages in the `-wal` file beside it, which `rosbags` (reading the file as immutable) does
  not see: such a bag is read from a copy with the log applied, as SQLite itself would.
- A bag that does not open, or whose reading fails partway (a damaged chunk), is, with
  `allow_partial`, recovered (bag_recovery: every readable message copied into a temporary
  bag) and reading goes on where it stopped; each gap is reported on stderr as it is found.
  Without `allow_partial`, damage is a UserError naming the bag.
"""
from __future__ import annotations

import re
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from hybrid_depth_core.recordings.bag_recovery import recover_files
from hybrid_depth_core.errors import UserError, one_line

# Humble's recorder embeds no type definitions in .db3 bags; its message layouts then apply
# (sensor_msgs and std_msgs are the same in every ROS 2 release).
DEFAULT_TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
PARTIAL_HINT = '--allow-partial-bags recovers what can still be read'


class RecordingReader:
    """A rosbag2 opened for reading (`path`: its directory or its one storage file); a context
    manager. `reader` is the rosbags AnyReader now in use, `damage` what was lost (None if
    nothing)."""

    def __init__(self, path: Path, allow_partial: bool = False):
        self.path, self.allow_partial = Path(path), allow_partial
        self.damage: str | None = None
        self._scratch: Path | None = None   # temporary copies, removed on close
        self._source = self.path            # what is read: the bag, or its copy with the log
        self.reader: AnyReader | None = None
        try:
            self._apply_write_ahead_logs()
            try:
                self.reader = self._open(self._source)
            except Exception as error:  # rosbags raises many types for unreadable input
                if not (allow_partial and self._storage_files()):
                    hint = (f' (if the recording was cut short or damaged, {PARTIAL_HINT})'
                            if self._storage_files() else '')
                    raise UserError(f'{self.path} is not a readable rosbag2: '
                                    f'{one_line(error)}{hint}') from None
                self._recover()
        except BaseException:
            self.close()
            raise

    @property
    def connections(self):
        return self.reader.connections

    @property
    def typestore(self):
        return self.reader.typestore

    def deserialize(self, raw, msgtype: str):
        return self.reader.deserialize(raw, msgtype)

    def messages(self, topics=None):
        """(connection, receive time ns, raw) of `topics` (all if None) in time order. Damage
        partway: a UserError, or, with allow_partial, the bag is recovered once and reading
        goes on after the last message given."""
        resume = None  # (time ns, messages already given at that time)
        last, at_last = None, 0
        while True:
            connections = [c for c in self.reader.connections
                           if topics is None or c.topic in topics]
            if not connections:  # rosbags reads an empty list as "every connection"
                return
            seen_at_resume = 0
            try:
                for connection, time_ns, raw in self.reader.messages(connections=connections):
                    if resume is not None and time_ns <= resume[0]:
                        if time_ns < resume[0] or seen_at_resume < resume[1]:
                            seen_at_resume += time_ns == resume[0]
                            continue
                    last, at_last = (last, at_last + 1) if time_ns == last else (time_ns, 1)
                    yield connection, time_ns, raw
                return
            except Exception as error:  # rosbags raises many types for damaged input
                if not self.allow_partial or self._scratch_has_recovery():
                    raise UserError(f'bag {self.path} is damaged: {one_line(error)}'
                                    + ('' if self.allow_partial else f' ({PARTIAL_HINT})')
                                    ) from None
                if not self._storage_files():
                    raise UserError(f'bag {self.path} is damaged: {one_line(error)}; it '
                                    f'cannot be recovered') from None
                self.reader.close()
                self._recover()
                resume = None if last is None else (last, at_last)

    def close(self) -> None:
        if self.reader is not None and self.reader.stack is not None:
            self.reader.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _open(path: Path) -> AnyReader:
        reader = AnyReader([path], default_typestore=DEFAULT_TYPESTORE)
        reader.open()
        return reader

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix='hybrid-depth-bag-'))
        return self._scratch

    def _scratch_has_recovery(self) -> bool:
        return self._scratch is not None and (self._scratch / 'recovered').exists()

    def _storage_files(self) -> list[Path]:
        """The bag's storage files in recording order (metadata.yaml's order where it can be
        read, else by the number in their names)."""
        source = self._source
        if source.is_file():
            return [source] if source.suffix in ('.mcap', '.db3') else []
        try:
            info = yaml.safe_load((source / 'metadata.yaml').read_text())
            names = info['rosbag2_bagfile_information']['relative_file_paths']
            files = [source / name for name in names if (source / name).is_file()]
        except Exception:  # noqa: BLE001 - a damaged metadata.yaml: find the files instead
            files = []
        if not files:
            files = sorted((*source.glob('*.mcap'), *source.glob('*.db3')),
                           key=lambda p: [int(t) if t.isdigit() else t
                                          for t in re.split(r'(\d+)', p.name)])
        return files if len({f.suffix for f in files}) == 1 else []

    def _recover(self) -> None:
        out = self._scratch_dir() / 'recovered'
        try:
            recovery = recover_files(self._storage_files(), out, DEFAULT_TYPESTORE)
        except (OSError, ValueError) as error:
            raise UserError(f'bag {self.path}: nothing could be recovered ({error})') from None
        self.damage = recovery.describe()
        if not recovery.messages:
            raise UserError(f'bag {self.path}: nothing could be recovered ({self.damage})')
        print(f'warning: bag {self.path}: {self.damage}', file=sys.stderr)
        self.reader = self._open(out)

    def _apply_write_ahead_logs(self) -> None:
        """Read an sqlite3 bag with a leftover `-wal` file from a copy with the log applied."""
        databases = ([self.path] if self.path.suffix == '.db3' else
                     sorted(self.path.glob('*.db3')) if self.path.is_dir() else [])
        logged = [db for db in databases
                  if (wal := Path(f'{db}-wal')).is_file() and wal.stat().st_size > 0]
        if not logged:
            return
        copy = self._scratch_dir() / 'with_log'
        copy.mkdir()
        files = ([self.path, Path(f'{self.path}-wal')] if self.path.is_file() else
                 self.path.iterdir())
        for file in files:
            if not file.is_file() or file.name.endswith('-shm'):  # SQLite rebuilds that
                continue
            if file in logged or file.name.endswith('-wal'):  # applied: a copy
                shutil.copy2(file, copy / file.name)
            else:  # only read: the bag's other files, linked
                (copy / file.name).symlink_to(file.absolute())
        counts = []
        for db in logged:
            alone = _message_rows(f'{db.absolute().as_uri()}?immutable=1')
            connection = sqlite3.connect(copy / db.name)  # finds the copied log beside it
            try:
                connection.execute('PRAGMA wal_checkpoint(TRUNCATE)')
            finally:
                connection.close()
            applied = _message_rows(f'{(copy / db.name).absolute().as_uri()}?mode=ro')
            counts.append(f'{db.name}: {applied} messages, {alone} of them in the database '
                          f'file itself')
        self._source = copy / self.path.name if self.path.is_file() else copy
        print(f'warning: bag {self.path}: the recorder did not close it (its write-ahead log '
              f'is left beside it); reading a copy with the log applied ({"; ".join(counts)})',
              file=sys.stderr)


def _message_rows(uri: str) -> int:
    connection = sqlite3.connect(uri, uri=True)
    try:
        return connection.execute('SELECT COUNT(*) FROM messages').fetchone()[0]
    except sqlite3.DatabaseError:
        return 0
    finally:
        connection.close()
