"""What is left of a recording cut short: the recorder killed before it finished the file (the
most common damage in the field), or a part damaged on disk. `rosbags` opens neither, so the
messages before the damage are copied into a new, complete rosbag2 in a temporary directory,
which then reads like any bag.

sqlite3: the header's page count says how long the file should be. Two copies get the
missing pages filled in, one with 0x00 and one with 0xFF bytes, and are read side by side in
insertion order: a row is kept only while both copies agree on it (bytes from the filled-in
pages would differ) and SQLite finds no damage.

MCAP: the format can be read without its summary, record by record from the start (the spec's
"streaming" reading). Records (MCAP spec): opcode u8, length u64, body. Schema 0x03: id u16,
name, encoding, data; Channel 0x04: id u16, schema id u16, topic, message encoding, metadata;
Message 0x05: channel id u16, sequence u32, log time u64, publish time u64, data; Chunk 0x06:
start and end time u64, uncompressed size u64, uncompressed CRC u32, compression, records (u64
length + bytes).
Strings and byte fields: u32 length + bytes.
"""
from __future__ import annotations

import mmap
import sqlite3
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from hybrid_depth_core.data.storage import MCAP_MAGIC, bag_file_writer

SCHEMA, CHANNEL, MESSAGE, CHUNK = 0x03, 0x04, 0x05, 0x06


class _Cut(Exception):
    """The records end (or are damaged) here."""


@dataclass
class Recovery:
    messages: int = 0
    where: str = ''            # where reading stopped, in the file's own terms
    problem: str = ''          # why it stopped
    skipped_types: set[str] = field(default_factory=set)  # unknown to the typestore

    def describe(self) -> str:
        line = (f'{self.problem} {self.where}; recovered {self.messages} messages before '
                f'it')
        if self.skipped_types:
            line += (f' (left out: messages of unknown type '
                     f'{", ".join(sorted(self.skipped_types))})')
        return line


def recover_mcap(path: Path, out: Path, typestore) -> Recovery:
    """Copy the messages of the MCAP file `path` that precede its damage into a new rosbag2
    directory `out`; the Recovery says how far it got and why it stopped."""
    with open(path, 'rb') as file:
        if file.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
            raise ValueError(f'{path} does not start like an MCAP file')
        # Mapped, not read: a recording can be larger than memory; records are sliced as read.
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _copy_records(data, out, typestore)


def _copy_records(data, out: Path, typestore) -> Recovery:
    recovery = Recovery()
    schemas: dict[int, str] = {}  # id -> message type
    channels: dict[int, tuple[str, str]] = {}
    connections: dict[int, object] = {}
    offset = len(MCAP_MAGIC)
    with bag_file_writer(out) as writer:
        def handle(opcode: int, body: bytes) -> None:
            if opcode == SCHEMA:
                schema_id, = struct.unpack_from('<H', body)
                schemas[schema_id] = _string(body, 2)[0]
            elif opcode == CHANNEL:
                channel_id, schema_id = struct.unpack_from('<HH', body)
                topic, _ = _string(body, 4)
                channels[channel_id] = (topic, schemas.get(schema_id, ''))
            elif opcode == MESSAGE:
                channel_id, _, log_time, _ = struct.unpack_from('<HIQQ', body)
                topic, msgtype = channels[channel_id]
                if channel_id not in connections:
                    if msgtype not in typestore.types:
                        recovery.skipped_types.add(msgtype)
                        return
                    connections[channel_id] = writer.add_connection(topic, msgtype,
                                                                    typestore=typestore)
                writer.write(connections[channel_id], log_time, body[22:])
                recovery.messages += 1
            elif opcode == CHUNK:
                for inner, inner_body in _records(_chunk_records(body), in_chunk=True):
                    handle(inner, inner_body)

        try:
            for opcode, body in _records(data, offset):
                handle(opcode, body)
                offset += 9 + len(body)
            recovery.problem = 'the summary after the data is cut short or damaged'
        except _Cut as cut:
            recovery.problem = str(cut)
        except (struct.error, KeyError, UnicodeDecodeError, ValueError) as error:
            recovery.problem = f'unreadable record ({type(error).__name__})'
    recovery.where = f'at byte {offset} of {len(data)}'
    return recovery


SQLITE_MAGIC = b'SQLite format 3\0'


def recover_sqlite3(path: Path, out: Path, typestore) -> Recovery:
    """Copy the messages of the rosbag2 sqlite3 database `path` that precede its damage into a
    new rosbag2 directory `out`."""
    data = Path(path).read_bytes()
    if not data.startswith(SQLITE_MAGIC) or len(data) < 100:
        raise ValueError(f'{path} does not start like an SQLite database')
    page_size = int.from_bytes(data[16:18], 'big')
    page_size = 65536 if page_size == 1 else page_size
    missing = max(0, page_size * int.from_bytes(data[28:32], 'big') - len(data))
    copies = [Path(out).parent / f'padded_{fill}.db3' for fill in ('00', 'ff')]
    for copy, fill in zip(copies, (b'\x00', b'\xff')):
        copy.write_bytes(data + fill * missing)
    connections = [sqlite3.connect(f'file:{copy}?mode=ro', uri=True) for copy in copies]
    recovery, rows = Recovery(), 0
    try:
        with bag_file_writer(out) as writer:
            try:
                topics = {topic_id: (name, msgtype) for topic_id, name, msgtype in
                          connections[0].execute('SELECT id, name, type FROM topics')}
                written = {}
                query = 'SELECT topic_id, timestamp, data FROM messages ORDER BY id'
                for row, same_row in zip(*(c.execute(query) for c in connections)):
                    if row != same_row:  # bytes from the filled-in pages: made up, not read
                        raise sqlite3.DatabaseError('a row reaches past the end of the file')
                    rows += 1
                    topic_id, time_ns, raw = row
                    topic, msgtype = topics[topic_id]
                    if msgtype not in typestore.types:
                        recovery.skipped_types.add(msgtype)
                        continue
                    if topic_id not in written:
                        written[topic_id] = writer.add_connection(topic, msgtype,
                                                                  typestore=typestore)
                    writer.write(written[topic_id], time_ns, raw)
                    recovery.messages += 1
                recovery.problem = 'no damaged row in a damaged file'
            except sqlite3.DatabaseError as error:
                recovery.problem = f'a damaged database ({error})'
    finally:
        for connection in connections:
            connection.close()
        for copy in copies:
            copy.unlink()
    recovery.where = f'after message row {rows} of a file {len(data)} bytes long'
    return recovery


def _records(data: bytes, offset: int = 0, in_chunk: bool = False):
    """(opcode, body) of each complete record from `offset` on; _Cut where one is cut short.
    The data-end and footer records end the data section; a chunk's records end with it."""
    while True:
        if offset == len(data):
            if in_chunk:
                return
            raise _Cut('the file ends before its summary (the recording was cut short)')
        if offset + 9 > len(data):
            raise _Cut('the file ends inside a record header')
        opcode = data[offset]
        length, = struct.unpack_from('<Q', data, offset + 1)
        if opcode in (0x0F, 0x02):  # DataEnd, Footer: the summary follows, nothing to copy
            return
        if offset + 9 + length > len(data):
            raise _Cut('the file ends inside a record')
        yield opcode, data[offset + 9:offset + 9 + length]
        offset += 9 + length


def _chunk_records(body: bytes) -> bytes:
    size, crc = struct.unpack_from('<QI', body, 16)
    compression, at = _string(body, 28)
    length, = struct.unpack_from('<Q', body, at)
    records = body[at + 8:at + 8 + length]
    if compression:
        from rosbags.rosbag2.storage_mcap import DECOMPRESSORS
        if compression not in DECOMPRESSORS:
            raise _Cut(f'a chunk compressed with {compression!r}, which cannot be read here')
        records = DECOMPRESSORS[compression](records, size)
    if len(records) != size or (crc and zlib.crc32(records) != crc):
        raise _Cut('a damaged chunk (size or CRC mismatch)')
    return records


def _string(body: bytes, at: int) -> tuple[str, int]:
    length, = struct.unpack_from('<I', body, at)
    return body[at + 4:at + 4 + length].decode(), at + 4 + length
