"""What is left of a damaged recording: the recorder killed before it finished the file (the
most common damage in the field), a chunk damaged on disk, one file of a split bag cut short.
`rosbags` reads none of these past the damage, so every message that can still be read is
copied into a new, complete rosbag2 in a temporary directory, which then reads like any bag,
and the Recovery says what was lost and where.

MCAP, read with the format authors' `mcap` library. Its chunks are independent: with the
summary intact, every chunk is found through its index and a damaged one (CRC, compression,
size) is skipped while the others are kept; without it (a file cut short), the records are read
one after the other from the start, again skipping damaged chunks, up to the cut.

sqlite3: the header's page count says how long the file should be. Two copies get the missing
pages filled in, one with 0x00 and one with 0xFF bytes (written a page at a time), and are read
side by side in insertion order: a row is kept only while both copies agree on it (bytes from
the filled-in pages would differ) and SQLite finds no damage.
"""
from __future__ import annotations

import io
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mcap.data_stream import ReadDataStream
from mcap.exceptions import EndOfFile, RecordLengthLimitExceeded
from mcap.records import Channel, Chunk, DataEnd, Footer, Message, Schema
from mcap.stream_reader import StreamReader, breakup_chunk

from hybrid_depth_core.recordings.storage import MCAP_MAGIC, bag_file_writer
from hybrid_depth_core.errors import one_line

CHUNK_OPCODE = 0x06
SQLITE_MAGIC = b'SQLite format 3\0'


@dataclass
class Gap:
    file: str
    problem: str
    start_ns: int | None = None  # log times of the messages lost, where the file says them
    end_ns: int | None = None


@dataclass
class Recovery:
    messages: int = 0
    gaps: list[Gap] = field(default_factory=list)    # damage skipped, reading went on
    ends: list[str] = field(default_factory=list)    # damage that ended a file's reading
    skipped_types: set[str] = field(default_factory=set)  # unknown to the typestore
    per_topic: Counter = field(default_factory=Counter)   # messages recovered
    recorded: Counter = field(default_factory=Counter)    # what the files' summaries list
    first_ns: int | None = None

    def _seen(self, time_ns: int) -> None:
        self.first_ns = time_ns if self.first_ns is None else min(self.first_ns, time_ns)

    def describe(self) -> str:
        def seconds(time_ns):
            return (time_ns - self.first_ns) / 1e9 if self.first_ns is not None else 0.0
        parts = []
        for gap in self.gaps:
            # From the damaged chunk's own header (no CRC covers it): shown only where it is
            # plausible, within the recording the intact messages span.
            span = (f', messages logged {seconds(gap.start_ns):.2f}-{seconds(gap.end_ns):.2f} s '
                    f'into the recording' if gap.start_ns and self.first_ns is not None and
                    self.first_ns <= gap.start_ns <= gap.end_ns else '')
            parts.append(f'skipped {gap.problem} in {gap.file}{span}')
        parts += self.ends
        lost = [f'{topic} {self.per_topic[topic]} of {count}'
                for topic, count in sorted(self.recorded.items())
                if self.per_topic[topic] < count]
        line = '; '.join(parts + [f'recovered {self.messages} messages'])
        if lost:
            line += f' (kept of those recorded: {", ".join(lost)})'
        if self.skipped_types:
            line += (f' (left out: messages of unknown type '
                     f'{", ".join(sorted(self.skipped_types))})')
        return line


class _Copy:
    """The new bag that recovered messages go into, one connection per topic and type."""

    def __init__(self, writer, typestore, recovery: Recovery):
        self.writer, self.typestore, self.recovery = writer, typestore, recovery
        self.connections: dict[tuple[str, str], object] = {}

    def write(self, topic: str, msgtype: str, time_ns: int, raw: bytes,
              definition: str | None = None) -> None:
        """One message; `definition`: its type's ros2msg text as the file carries it (MCAP
        schemas), which serves a type the typestore does not know (a custom message)."""
        key = (topic, msgtype)
        if key not in self.connections:
            if msgtype in self.typestore.types:
                connection = self.writer.add_connection(topic, msgtype, typestore=self.typestore)
            else:
                try:
                    connection = self.writer.add_connection(
                        topic, msgtype, msgdef=definition, rihs01=_type_hash(definition, msgtype))
                except Exception:  # noqa: BLE001 - no definition, or one that does not parse
                    self.recovery.skipped_types.add(msgtype)
                    return
            self.connections[key] = connection
        self.writer.write(self.connections[key], time_ns, raw)
        self.recovery.messages += 1
        self.recovery.per_topic[topic] += 1
        self.recovery._seen(time_ns)


def recover_files(files: list[Path], out: Path, typestore) -> Recovery:
    """Copy every message that can still be read from the storage files `files` (one bag's,
    .mcap or .db3, in recording order) into a new rosbag2 directory `out`."""
    recovery = Recovery()
    with bag_file_writer(out) as writer:
        copy = _Copy(writer, typestore, recovery)
        for path in files:
            try:  # a file that cannot be read at all (a split left empty) ends only its own part
                if path.suffix == '.mcap':
                    _recover_mcap(Path(path), copy)
                else:
                    _recover_sqlite3(Path(path), copy, Path(out).parent)
            except (OSError, ValueError) as error:
                recovery.ends.append(f'{Path(path).name}: nothing read ({error})')
    return recovery


def _recover_mcap(path: Path, copy: _Copy) -> None:
    with open(path, 'rb') as file:
        if file.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
            raise ValueError(f'{path} does not start like an MCAP file')
        summary = _summary(file)
        if summary is not None and summary.chunk_indexes:
            _by_chunk_index(path, file, summary, copy)
        else:  # cut short, or written without chunks (a summary without chunk indexes)
            _streaming(path, file, copy, summary_lost=summary is None)


def _summary(file):
    """The file's summary, or None if it is missing or damaged (a file cut short)."""
    from mcap.reader import SeekingReader

    size = _size(file)
    file.seek(0)
    try:
        return SeekingReader(file, record_size_limit=size).get_summary()
    except Exception:  # noqa: BLE001 - any damage means: read without it
        return None


def _size(file) -> int:
    return file.seek(0, io.SEEK_END)


class _Records:
    """Schemas and channels as they are declared, and the messages of one MCAP file."""

    def __init__(self, path: Path, copy: _Copy, schemas=None, channels=None):
        self.path, self.copy = path, copy
        self.schemas = {i: s.name for i, s in (schemas or {}).items()}
        self.definitions = {i: _definition(s) for i, s in (schemas or {}).items()}
        self.channels = {i: (c.topic, c.schema_id) for i, c in (channels or {}).items()}

    def handle(self, record) -> None:
        if isinstance(record, Schema):
            self.schemas[record.id] = record.name
            self.definitions[record.id] = _definition(record)
        elif isinstance(record, Channel):
            self.channels[record.id] = (record.topic, record.schema_id)
        elif isinstance(record, Message):
            topic, schema_id = self.channels[record.channel_id]
            self.copy.write(topic, self.schemas.get(schema_id, ''), record.log_time,
                            record.data, self.definitions.get(schema_id))

    def chunk(self, chunk: Chunk, where: str) -> None:
        """A chunk's records; a damaged chunk becomes a gap and reading goes on."""
        try:
            records = breakup_chunk(chunk, validate_crc=True)
            declared = set(self.channels)
            for record in records:  # a chunk without a CRC can still be garbled
                if isinstance(record, Channel):
                    declared.add(record.id)
                elif isinstance(record, Message) and record.channel_id not in declared:
                    raise ValueError('a message of an undeclared channel')
        except Exception as error:  # noqa: BLE001 - CRC, zstd, lz4 and parsing errors alike
            self.copy.recovery.gaps.append(Gap(
                self.path.name, f'a damaged chunk at {where} ({_problem(error)})',
                chunk.message_start_time, chunk.message_end_time))
            return
        for record in records:
            self.handle(record)


def _type_hash(definition: str | None, msgtype: str) -> str:
    """ROS 2's hash (RIHS01) of a type from its ros2msg text, its dependencies included."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    if not definition:
        raise ValueError(f'no definition of {msgtype}')

    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(definition, msgtype))
    return store.hash_rihs01(msgtype)


def _definition(schema: Schema) -> str | None:
    return schema.data.decode(errors='replace') if schema.encoding == 'ros2msg' else None


def _by_chunk_index(path: Path, file, summary, copy: _Copy) -> None:
    records = _Records(path, copy, summary.schemas, summary.channels)
    if summary.statistics is not None:
        for channel_id, count in summary.statistics.channel_message_counts.items():
            if channel_id in summary.channels:
                copy.recovery.recorded[summary.channels[channel_id].topic] += count
    size = _size(file)
    for index in sorted(summary.chunk_indexes, key=lambda i: i.chunk_start_offset):
        where = f'byte {index.chunk_start_offset}'
        try:
            # The summary has no CRC check here: an index is trusted only inside the file.
            if not 0 < index.chunk_length <= size - index.chunk_start_offset:
                raise ValueError('its index points outside the file')
            file.seek(index.chunk_start_offset)
            data = file.read(index.chunk_length)
            if len(data) < 9 or data[0] != CHUNK_OPCODE:
                raise ValueError('no chunk record where the index points')
            chunk = Chunk.read(ReadDataStream(io.BytesIO(data[9:])))
        except Exception as error:  # noqa: BLE001 - its header is damaged: skip it whole
            copy.recovery.gaps.append(Gap(path.name, f'a damaged chunk at {where} '
                                          f'({_problem(error)})', index.message_start_time,
                                          index.message_end_time))
            continue
        records.chunk(chunk, where)


def _streaming(path: Path, file, copy: _Copy, summary_lost: bool) -> None:
    """Record after record from the start, as the spec allows when the summary is lost."""
    records = _Records(path, copy)
    size = _size(file)
    file.seek(0)
    reader = StreamReader(file, emit_chunks=True, record_size_limit=size)
    try:
        for record in reader.records:
            if isinstance(record, (DataEnd, Footer)):  # the data section is complete
                if summary_lost:
                    copy.recovery.ends.append(f'{path.name}: its summary is cut short or '
                                              f'damaged (every message before it was read)')
                return
            if isinstance(record, Chunk):
                records.chunk(record, f'the record ending at byte {file.tell()}')
            else:
                records.handle(record)
        return
    except (EndOfFile, RecordLengthLimitExceeded):  # a record longer than the file
        end = 'the file ends inside a record before its summary (the recording was cut short)'
    except Exception as error:  # noqa: BLE001 - a record that cannot be parsed
        end = f'an unreadable record ({_problem(error)})'
    copy.recovery.ends.append(f'{path.name}: {end}, reading stopped at about byte '
                              f'{file.tell()} of {size}')


def _problem(error: Exception) -> str:
    return f'{type(error).__name__}: {one_line(error, 120)}'


def _recover_sqlite3(path: Path, copy: _Copy, scratch: Path) -> None:
    with open(path, 'rb') as file:
        header = file.read(100)
        size = _size(file)
    if not header.startswith(SQLITE_MAGIC) or len(header) < 100:
        raise ValueError(f'{path} does not start like an SQLite database')
    page_size = int.from_bytes(header[16:18], 'big')
    page_size = 65536 if page_size == 1 else page_size
    missing = max(0, page_size * int.from_bytes(header[28:32], 'big') - size)
    # A file that is whole (a split bag's other files) is read as it is; one cut short from
    # two copies filled in two ways.
    copies = [scratch / f'padded_{fill}_{path.name}' for fill in ('00', 'ff')] if missing else []
    recovery, rows = copy.recovery, 0
    try:
        for padded, fill in zip(copies, (b'\x00', b'\xff')):
            _padded_copy(path, padded, fill * page_size, missing)
        # As URIs (a '#' or '?' in a path is no query), read-only: nothing is ever created.
        connections = [sqlite3.connect(f'{p.absolute().as_uri()}?mode=ro', uri=True)
                       for p in copies] or [sqlite3.connect(
                           f'{path.absolute().as_uri()}?immutable=1', uri=True)]
        try:
            topics = {topic_id: (name, msgtype) for topic_id, name, msgtype in
                      connections[0].execute('SELECT id, name, type FROM topics')}
            query = 'SELECT topic_id, timestamp, data FROM messages ORDER BY id'
            for row, *same_rows in zip(*(c.execute(query) for c in connections)):
                if any(same != row for same in same_rows):  # made up from the filled-in pages
                    raise sqlite3.DatabaseError('a row reaches past the end of the file')
                rows += 1
                topic_id, time_ns, raw = row
                if topic_id not in topics:
                    raise sqlite3.DatabaseError(f'a message of an unknown topic id {topic_id}')
                copy.write(*topics[topic_id], time_ns, raw)
            if missing:
                recovery.ends.append(f'{path.name}: no damaged row in a damaged file')
        except sqlite3.DatabaseError as error:
            recovery.ends.append(f'{path.name}: a damaged database ({error}) after message '
                                 f'row {rows} of a file {size} bytes long')
        finally:
            for connection in connections:
                connection.close()
    finally:
        for padded in copies:
            padded.unlink(missing_ok=True)


def _padded_copy(path: Path, padded: Path, page: bytes, missing: int) -> None:
    """`path` with `missing` bytes of `page`'s filling appended, a page at a time in memory."""
    with open(path, 'rb') as source, open(padded, 'wb') as target:
        while block := source.read(len(page)):
            target.write(block)
        while missing > 0:
            target.write(page[:missing])
            missing -= len(page)
