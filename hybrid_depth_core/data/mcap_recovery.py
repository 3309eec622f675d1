"""What is left of an MCAP recording cut short: the recorder killed before it wrote the summary
and footer (the most common damage in the field), or a chunk damaged on disk.

The MCAP format can be read without its summary, record by record from the start (the spec's
"streaming" reading). `rosbags` only opens complete files, so the records before the damage are
copied into a new, complete rosbag2 in a temporary directory, which then reads like any bag.
Records (MCAP spec): opcode u8, length u64, body. Schema 0x03: id u16, name, encoding, data;
Channel 0x04: id u16, schema id u16, topic, message encoding, metadata; Message 0x05: channel
id u16, sequence u32, log time u64, publish time u64, data; Chunk 0x06: start and end time
u64, uncompressed size u64, uncompressed CRC u32, compression, records (u64 length + bytes).
Strings and byte fields: u32 length + bytes.
"""
from __future__ import annotations

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
    bytes_read: int = 0        # offset of the first record not recovered
    size: int = 0              # of the file
    problem: str = ''          # why reading stopped
    skipped_types: set[str] = field(default_factory=set)  # unknown to the typestore

    def describe(self) -> str:
        line = (f'{self.problem} at byte {self.bytes_read} of {self.size}; recovered '
                f'{self.messages} messages before it')
        if self.skipped_types:
            line += (f' (left out: messages of unknown type '
                     f'{", ".join(sorted(self.skipped_types))})')
        return line


def recover_mcap(path: Path, out: Path, typestore) -> Recovery:
    """Copy the messages of the MCAP file `path` that precede its damage into a new rosbag2
    directory `out`; the Recovery says how far it got and why it stopped."""
    data = Path(path).read_bytes()
    recovery = Recovery(size=len(data))
    if not data.startswith(MCAP_MAGIC):
        raise ValueError(f'{path} does not start like an MCAP file')
    schemas: dict[int, tuple[str, str]] = {}
    channels: dict[int, tuple[str, str]] = {}
    connections: dict[int, object] = {}
    offset = len(MCAP_MAGIC)
    with bag_file_writer(out) as writer:
        def handle(opcode: int, body: bytes) -> None:
            if opcode == SCHEMA:
                schema_id, = struct.unpack_from('<H', body)
                name, at = _string(body, 2)
                schemas[schema_id] = (name, _string(body, at)[0])
            elif opcode == CHANNEL:
                channel_id, schema_id = struct.unpack_from('<HH', body)
                topic, _ = _string(body, 4)
                channels[channel_id] = (topic, schemas.get(schema_id, ('', ''))[0])
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
    recovery.bytes_read = offset
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
