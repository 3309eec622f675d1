"""Recordings as robots damage them (issue 35): compressed MCAP chunks damaged in the middle,
split bags with one file cut short, sqlite3 bags left with a write-ahead log by a killed
recorder; every command reads what can be read, says what it lost, and never writes to its
input."""
import hashlib
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader

from hybrid_depth_core.recordings.bag_reader import Bag
from hybrid_depth_core.recordings.bag_recovery import recover_files
from hybrid_depth_core.recordings.storage import rewrite_mcap
from hybrid_depth_core.errors import UserError
from hybrid_depth_core.messages import builders as msgs
from recorded_bags import write_bag

TOPIC = '/camera/image_raw'
WIDTH, HEIGHT = 64, 48


def image(index: int) -> np.ndarray:
    """A frame that says which it is: its value, over a texture that does not compress away."""
    texture = np.random.default_rng(index).integers(0, 32, (HEIGHT, WIDTH, 3), np.uint8)
    return texture + np.uint8(8 * index % 256)


def messages(indices, info: bool = False):
    """Image messages (and their camera_info) of the frames `indices`."""
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    out = []
    for i in indices:
        stamp = 10**9 + i * 10**8
        header = msgs.header(stamp, 'camera')
        out.append((TOPIC, 'sensor_msgs/msg/Image', msgs.rgb_image(image(i), header), stamp))
        if info:
            out.append(('/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
                        msgs.camera_info(K, WIDTH, HEIGHT, header), stamp))
    return out


def frames_of(bag: Path, allow_partial: bool = False) -> list[int]:
    """Which frames a bag gives, in the order it gives them."""
    with Bag(bag, allow_partial=allow_partial) as opened:
        return [int(np.median(rgb.astype(int) - image(0))) // 8 for _, rgb, _ in opened.images()]


def digest(path: Path) -> str:
    hash_ = hashlib.sha256()
    for file in sorted(p for p in path.rglob('*') if p.is_file()):
        hash_.update(file.name.encode() + file.read_bytes())
    return hash_.hexdigest()


def chunked_bag(path: Path, compression: str, frames: int = 24, info: bool = False) -> Path:
    """A bag of `frames` images in chunks of about two images, compressed with a real zstd or
    lz4 compressor (the MCAP authors' writer)."""
    write_bag(path, messages(range(frames), info))
    rewrite_mcap(next(path.glob('*.mcap')), compression, chunk_size=2 * WIDTH * HEIGHT * 3)
    return path


def damage_chunk(bag: Path, which: float, frame_header: bool = False) -> set[int]:
    """Flip a byte in the middle of the chunk a fraction `which` into the file (or in the
    compressor's frame header at the start of its data); the frames it held."""
    data = next(bag.glob('*.mcap'))
    with open(data, 'rb') as file:
        chunks = sorted(make_reader(file).get_summary().chunk_indexes,
                        key=lambda c: c.chunk_start_offset)
    chunk = chunks[int(len(chunks) * which)]
    content = bytearray(data.read_bytes())
    # Chunk record: opcode, length, 3 u64 and a u32, compression string, records length u64.
    data_at = chunk.chunk_start_offset + 9 + 28 + 4 + len(chunk.compression) + 8
    content[data_at + 1 if frame_header else
            chunk.chunk_start_offset + chunk.chunk_length // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    return {i for i in range(100)
            if chunk.message_start_time <= 10**9 + i * 10**8 <= chunk.message_end_time}


@pytest.mark.parametrize('compression', ['zstd', 'lz4'])
@pytest.mark.parametrize('summary', ['intact', 'cut'])
def test_a_damaged_compressed_chunk_is_skipped_and_reading_goes_on(tmp_path, capsys,
                                                                   compression, summary):
    bag = chunked_bag(tmp_path / 'bag', compression)
    assert frames_of(bag) == list(range(24))
    lost = damage_chunk(bag, 0.4)
    assert lost and max(lost) < 20
    if summary == 'cut':  # the recorder also died: no summary, the last frames not written
        data = next(bag.glob('*.mcap'))
        data.write_bytes(data.read_bytes()[:int(data.stat().st_size * 0.8)])
    before = digest(bag)
    with pytest.raises(UserError, match=f'{bag}.*--allow-partial-bags'):
        frames_of(bag)
    kept = frames_of(bag, allow_partial=True)
    said = capsys.readouterr().err
    assert 'skipped a damaged chunk' in said and f'bag {bag}' in said
    # Every frame outside the damaged chunk, in order, up to the cut: the chunks after the
    # damage are read too (before, everything after it was lost).
    expected = [i for i in range(24) if i not in lost]
    if summary == 'intact':
        assert kept == expected
        assert f'{TOPIC} {len(expected)} of 24' in said  # how many were lost
    else:
        assert kept == expected[:len(kept)] and max(kept) > max(lost)
        assert 'cut short' in said
    assert digest(bag) == before


@pytest.mark.parametrize('compression', ['zstd', 'lz4'])
def test_a_chunk_its_decompressor_refuses_is_skipped(tmp_path, compression):
    """Damage in the compressed frame's header fails in zstd or lz4 itself, before any CRC
    (the hand-written reader let that error through)."""
    bag = chunked_bag(tmp_path / 'bag', compression)
    lost = damage_chunk(bag, 0.5, frame_header=True)
    from hybrid_depth_core.messages.builders import TYPESTORE
    recovery = recover_files(sorted(bag.glob('*.mcap')), tmp_path / 'out', TYPESTORE)
    assert recovery.messages == 24 - len(lost)
    assert 'ZstdError' in recovery.describe() if compression == 'zstd' else 'LZ4' in \
        recovery.describe()


def test_infer_says_what_a_damaged_chunk_cost(tmp_path, capsys):
    import torch

    from hybrid_depth_core.networks import DepthModel, DepthModelConfig, PoseNet
    from hybrid_depth_core.runtime.bag_inference import infer_bag
    from hybrid_depth_core.runtime.node_config import NodeConfig
    from hybrid_depth_core.runtime.predictor import DepthPredictor

    bag = chunked_bag(tmp_path / 'bag', 'zstd', info=True)
    damage_chunk(bag, 0.5)
    kept = len(frames_of(bag, allow_partial=True))
    capsys.readouterr()
    torch.manual_seed(0)
    predictor = DepthPredictor(DepthModel(DepthModelConfig(arch='resnet18', multi_frame=True))
                               .eval(), PoseNet().eval(), (64, 64), torch.device('cpu'))
    summary = infer_bag(predictor, bag, tmp_path / 'out', NodeConfig(), progress=False,
                        allow_partial=True)
    said = capsys.readouterr().err
    assert summary.frames == kept < 24
    assert 'skipped a damaged chunk' in said and f'{TOPIC} {kept} of 24' in said


def split_bag(root: Path, cut: int | None) -> Path:
    """One recording in two files (the recorder's --max-bag-size), file `cut` cut short."""
    parts = [write_bag(root / f'part{i}', messages(range(12 * i, 12 * i + 12))) for i in (0, 1)]
    bag = root / 'split'
    bag.mkdir()
    infos = [yaml.safe_load((p / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
             for p in parts]
    merged = dict(infos[0])
    merged['relative_file_paths'] = [f'split_{i}.mcap' for i in (0, 1)]
    merged['files'] = [dict(info['files'][0], path=f'split_{i}.mcap')
                       for i, info in enumerate(infos)]
    merged['message_count'] = sum(info['message_count'] for info in infos)
    merged['duration'] = {'nanoseconds': 24 * 10**8}
    merged['topics_with_message_count'][0]['message_count'] = 24
    (bag / 'metadata.yaml').write_text(yaml.safe_dump(
        {'rosbag2_bagfile_information': merged}))
    for i, part in enumerate(parts):
        content = next(part.glob('*.mcap')).read_bytes()
        (bag / f'split_{i}.mcap').write_bytes(content[:int(len(content) * 0.6)]
                                              if i == cut else content)
    return bag


@pytest.mark.parametrize('cut', [0, 1])
def test_a_split_bag_with_one_file_cut_short_is_recovered(tmp_path, cut):
    assert frames_of(split_bag(tmp_path / 'whole', None)) == list(range(24))
    bag = split_bag(tmp_path / 'cut', cut)
    with pytest.raises(UserError, match='not a readable rosbag2.*--allow-partial-bags'):
        frames_of(bag)
    kept = frames_of(bag, allow_partial=True)
    whole_file = list(range(12, 24)) if cut == 0 else list(range(12))
    assert set(whole_file) <= set(kept) and 12 <= len(kept) < 24
    assert kept == sorted(kept)  # the files in recording order


def killed_sqlite_recorder(bag: Path) -> Path:
    """An sqlite3 bag of 8 images whose recorder was killed before it checkpointed: the last
    four messages are only in the write-ahead log beside the database."""
    write_bag(bag, messages(range(8)), storage='sqlite3')
    database = next(bag.glob('*.db3'))
    script = f'''
import os, sqlite3
db = sqlite3.connect({str(database)!r})
rows = db.execute('SELECT id, topic_id, timestamp, data FROM messages WHERE id > 4').fetchall()
db.execute('DELETE FROM messages WHERE id > 4')
db.commit()
db.execute('PRAGMA journal_mode=WAL')
db.execute('PRAGMA wal_autocheckpoint=0')
db.executemany('INSERT INTO messages (id, topic_id, timestamp, data) VALUES (?, ?, ?, ?)', rows)
db.commit()
os._exit(0)  # killed: no checkpoint, no close
'''
    subprocess.run([sys.executable, '-c', script], check=True)
    assert Path(f'{database}-wal').stat().st_size > 0
    return bag


def test_an_sqlite3_bag_left_with_its_write_ahead_log_reads_whole(tmp_path, capsys):
    bag = killed_sqlite_recorder(tmp_path / 'wal')
    names, before = sorted(p.name for p in bag.iterdir()), digest(bag)
    assert frames_of(bag) == list(range(8))  # before: 0-3, silently
    said = capsys.readouterr().err
    assert 'write-ahead log' in said and '8 messages, 4 of them in the database file' in said
    assert sorted(p.name for p in bag.iterdir()) == names and digest(bag) == before
    database = next(bag.glob('*.db3'))
    assert frames_of(database) == list(range(8))  # the .db3 given on its own


def test_sqlite3_recovery_holds_pages_not_the_file(tmp_path):
    """Recovering a database cut short takes memory by the page and chunk, not by the file (it
    used to read it whole and build two padded copies in memory): three times the recording,
    the same peak of Python allocations."""
    from hybrid_depth_core.messages.builders import TYPESTORE

    def peak(frames: int) -> tuple[int, int]:
        big = np.zeros((256, 256, 3), np.uint8)
        bag = write_bag(tmp_path / f'big{frames}', [
            (TOPIC, 'sensor_msgs/msg/Image',
             msgs.rgb_image(big + np.uint8(i % 256), msgs.header(10**9 + i, 'c')), 10**9 + i)
            for i in range(frames)], storage='sqlite3')
        database = next(bag.glob('*.db3'))
        size = database.stat().st_size
        with open(database, 'r+b') as file:
            file.truncate(int(size * 0.7))
        tracemalloc.start()
        try:
            recovery = recover_files([database], tmp_path / f'out{frames}', TYPESTORE)
            return tracemalloc.get_traced_memory()[1], recovery.messages, size
        finally:
            tracemalloc.stop()

    small, small_count, _ = peak(60)
    large, large_count, size = peak(180)
    assert 0.6 * 180 < large_count < 180 and 0.6 * 60 < small_count < 60
    assert large < 1.3 * small and large < size / 3, (small, large, size)


def test_a_topic_lost_whole_to_the_damage_reads_as_empty_not_as_every_topic(tmp_path):
    """The one camera_info sits in the damaged chunk: after recovery its topic has no
    connection, which must read as no messages (rosbags takes an empty list as "all")."""
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    stamp = 10**9 + 12 * 10**8
    info = ('/camera/camera_info', 'sensor_msgs/msg/CameraInfo',
            msgs.camera_info(K, WIDTH, HEIGHT, msgs.header(stamp, 'camera')), stamp)
    bag = tmp_path / 'bag'
    write_bag(bag, sorted(messages(range(24)) + [info], key=lambda m: m[3]))
    rewrite_mcap(next(bag.glob('*.mcap')), 'zstd', chunk_size=2 * WIDTH * HEIGHT * 3)
    data = next(bag.glob('*.mcap'))
    with open(data, 'rb') as file:
        chunk = next(c for c in make_reader(file).get_summary().chunk_indexes
                     if c.message_start_time <= stamp <= c.message_end_time)
    content = bytearray(data.read_bytes())
    content[chunk.chunk_start_offset + chunk.chunk_length // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    with Bag(bag, allow_partial=True) as opened:
        assert len(list(opened.images())) < 24
        assert len(opened.camera_infos()) == 0


def test_a_split_bag_with_an_empty_file_keeps_the_others(tmp_path):
    bag = split_bag(tmp_path, None)
    (bag / 'split_1.mcap').write_bytes(b'')  # the recorder died right after the split
    from hybrid_depth_core.messages.builders import TYPESTORE
    recovery = recover_files(sorted(bag.glob('*.mcap')), tmp_path / 'out', TYPESTORE)
    assert recovery.messages == 12
    assert 'split_1.mcap: nothing read' in recovery.describe()


def test_a_message_type_only_the_file_defines_is_recovered_with_its_definition(tmp_path):
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    from hybrid_depth_core.recordings.bag_opening import DEFAULT_TYPESTORE

    custom = get_typestore(Stores.ROS2_HUMBLE)
    custom.register(get_types_from_msg('int32 count', 'my_pkg/msg/Tick'))
    Tick = custom.types['my_pkg/msg/Tick']
    bag = tmp_path / 'ticks'
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection('/tick', 'my_pkg/msg/Tick', typestore=custom)
        for i in range(5):
            writer.write(connection, 10**9 + i, custom.serialize_cdr(Tick(count=i),
                                                                     'my_pkg/msg/Tick'))
    data = next(bag.glob('*.mcap'))
    data.write_bytes(data.read_bytes()[:-100])  # cut short: its summary gone
    recovery = recover_files([data], tmp_path / 'out', DEFAULT_TYPESTORE)
    assert recovery.messages == 5 and not recovery.skipped_types
    with AnyReader([tmp_path / 'out'], default_typestore=DEFAULT_TYPESTORE) as reader:
        counts = [reader.deserialize(raw, c.msgtype).count for c, _, raw in reader.messages()]
    assert counts == [0, 1, 2, 3, 4]
