"""The rosbag2 storage formats this project writes, by the names ROS 2 uses for them (the
command line offers these without importing `rosbags`), and the one way it writes a bag."""
from __future__ import annotations

import zlib
from contextlib import contextmanager
from pathlib import Path

STORAGES = ('mcap', 'sqlite3')


def storage_plugin(name: str):
    """rosbags' StoragePlugin for `name` (one of STORAGES)."""
    from rosbags.rosbag2 import StoragePlugin

    if name not in STORAGES:
        raise ValueError(f'storage must be one of {STORAGES}, got {name!r}')
    return {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}[name]


@contextmanager
def bag_file_writer(path: Path, storage: str = 'mcap'):
    """A rosbags Writer of a new rosbag2 directory `path` in `storage`; once it is closed, MCAP
    chunks get their CRCs (write_chunk_crcs), so that damage is found when the bag is read."""
    from rosbags.rosbag2 import Writer

    with Writer(path, version=9, storage_plugin=storage_plugin(storage)) as writer:
        yield writer
    if storage == 'mcap':
        write_chunk_crcs(path)


MCAP_MAGIC = b'\x89MCAP0\r\n'
CHUNK_OPCODE = 0x06


def write_chunk_crcs(bag: Path) -> int:
    """Fill in the uncompressed_crc of every uncompressed chunk of the MCAP files in `bag` (a
    rosbag2 directory just written), in place; returns how many were filled.

    `rosbags` writes 0 there, which MCAP defines as "not computed", so a flipped byte in an
    image would read back unnoticed; with the CRC set, readers (rosbags included) report the
    chunk as damaged. Chunk layout (MCAP spec): opcode u8, length u64, then start and end time
    u64, uncompressed_size u64, uncompressed_crc u32, compression (u32 length + bytes), records
    length u64, records."""
    filled = 0
    for path in sorted(Path(bag).glob('*.mcap')):
        with open(path, 'r+b') as file:
            if file.read(8) != MCAP_MAGIC:
                raise ValueError(f'{path} is not an MCAP file')
            while True:
                head = file.read(9)
                if len(head) < 9:
                    break
                opcode, length = head[0], int.from_bytes(head[1:], 'little')
                start = file.tell()
                if opcode == CHUNK_OPCODE:
                    fixed = file.read(28)
                    crc_at = start + 24
                    compression_length = int.from_bytes(file.read(4), 'little')
                    compression = file.read(compression_length)
                    records_length = int.from_bytes(file.read(8), 'little')
                    if compression == b'' and int.from_bytes(fixed[24:28], 'little') == 0:
                        records = file.read(records_length)
                        file.seek(crc_at)
                        file.write(zlib.crc32(records).to_bytes(4, 'little'))
                        filled += 1
                file.seek(start + length)
    return filled
