"""The rosbag2 storage formats this project writes, by the names ROS 2 uses for them (the
command line offers these without importing `rosbags`), and the one way it writes a bag."""
from __future__ import annotations

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
    files are rewritten with chunk CRCs (rewrite_mcap), so that damage is found when the bag
    is read."""
    from rosbags.rosbag2 import Writer

    with Writer(path, version=9, storage_plugin=storage_plugin(storage)) as writer:
        yield writer
    if storage == 'mcap':
        for file in sorted(Path(path).glob('*.mcap')):
            rewrite_mcap(file)


MCAP_MAGIC = b'\x89MCAP0\r\n'
CHUNK_COMPRESSIONS = ('none', 'zstd', 'lz4')


def rewrite_mcap(path: Path, compression: str = 'none', chunk_size: int = 1 << 20) -> None:
    """Rewrite the MCAP file `path` (one this process has just written) through the MCAP
    authors' writer, atomically: the same schemas, channels, messages, metadata and attachments
    in chunks of `chunk_size` bytes compressed with `compression` (CHUNK_COMPRESSIONS), each
    with its CRC. `rosbags` writes 0 there, which MCAP defines as "not computed", so a flipped
    byte in an image would read back unnoticed; with the CRC set, readers (rosbags included)
    report the chunk as damaged."""
    from mcap.reader import make_reader
    from mcap.writer import CompressionType, Writer

    path = Path(path)
    temporary = path.with_name(f'.{path.name}.partial')
    try:
        with open(path, 'rb') as source, open(temporary, 'wb') as target:
            reader = make_reader(source)
            header, summary = reader.get_header(), reader.get_summary()
            writer = Writer(target, chunk_size=chunk_size,
                            compression=CompressionType[compression.upper()])
            writer.start(profile=header.profile, library=header.library)
            schemas = {schema.id: writer.register_schema(schema.name, schema.encoding,
                                                         schema.data)
                       for schema in summary.schemas.values()}
            channels = {channel.id: writer.register_channel(
                channel.topic, channel.message_encoding, schemas.get(channel.schema_id, 0),
                channel.metadata) for channel in summary.channels.values()}
            # In log-time order the reader holds a chunk at a time (in file order it reads
            # every chunk before the first message).
            for _, channel, message in reader.iter_messages(log_time_order=True):
                writer.add_message(channels[channel.id], message.log_time, message.data,
                                   message.publish_time, message.sequence)
            for metadata in reader.iter_metadata():
                writer.add_metadata(metadata.name, metadata.metadata)
            for attachment in reader.iter_attachments():
                writer.add_attachment(attachment.create_time, attachment.log_time,
                                      attachment.name, attachment.media_type, attachment.data)
            writer.finish()
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
