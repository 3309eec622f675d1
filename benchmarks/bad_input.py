"""Bad input, as a new user would give it: build damaged recordings, broken checkpoints and
nonsense settings, run the commands on them, and check what each left behind.

    python benchmarks/bad_input.py [--out out/bad_input]

Every bad input must end in exit code != 0 with one line naming the input and the problem, no
traceback, nothing under the output's final name, and its inputs unchanged (hashed before and
after). Damaged recordings must still train, infer, evaluate and play with --allow-partial-bags
and say what they lost, and valid input that looks odd (binned or ROI camera_info, a bag left
with its sqlite3 write-ahead log, a truncated frame cache, a kernel build killed midway) must
work. Prints Markdown tables for docs/benchmarks.md and writes OUT/results.json.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COMMAND = [sys.executable, '-m', 'hybrid_depth_ros.cli']
CHECKPOINT = Path('models/hybrid_synthetic.pt')
SMALL = ['data.width=64', 'data.height=64', 'batch_size=2', '--max-steps', '1']


def hybrid_depth(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(COMMAND + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout)


def digest(paths) -> str:
    hash_ = hashlib.sha256()
    for path in paths:
        for file in sorted(p for p in Path(path).rglob('*') if p.is_file()) if Path(
                path).is_dir() else [Path(path)]:
            hash_.update(str(file).encode() + file.read_bytes())
    return hash_.hexdigest()


def build_inputs(root: Path) -> dict[str, Path]:
    """The good recording and its damaged copies."""
    good = root / 'good'
    if not good.exists():
        subprocess.run(COMMAND + ['sample', str(good), '--frames', '12', '--width', '128',
                                  '--height', '64'], check=True, capture_output=True)
    inputs = {'good': good}

    def copy(name: str, change) -> None:
        path = inputs[name] = root / name
        if not path.exists():
            shutil.copytree(good, path)
            change(path)

    def cut(path: Path, fraction: float = None, tail: int = 100) -> None:
        data = next(path.glob('*.mcap'))
        content = data.read_bytes()
        data.write_bytes(content[:int(len(content) * fraction)] if fraction else content[:-tail])

    def flip(path: Path) -> None:
        data = next(path.glob('*.mcap'))
        content = bytearray(data.read_bytes())
        content[len(content) // 2] ^= 0x01
        data.write_bytes(bytes(content))
    copy('cut_summary', cut)
    copy('flipped_byte', flip)
    copy('no_metadata', lambda path: (path / 'metadata.yaml').unlink())
    sqlite = inputs['sqlite_cut'] = root / 'sqlite_cut'
    if not sqlite.exists():
        subprocess.run(COMMAND + ['sample', str(sqlite), '--frames', '12', '--width', '128',
                                  '--height', '64', '--storage', 'sqlite3'], check=True,
                       capture_output=True)
        data = next(sqlite.glob('*.db3'))
        data.write_bytes(data.read_bytes()[:int(data.stat().st_size * 0.6)])
    checkpoints = root / 'checkpoints'
    checkpoints.mkdir(exist_ok=True)
    whole = CHECKPOINT.read_bytes()
    (checkpoints / 'cut.pt').write_bytes(whole[:len(whole) // 2])
    (checkpoints / 'garbage.pt').write_bytes(b'not a checkpoint\n')
    inputs.update(cut_checkpoint=checkpoints / 'cut.pt',
                  garbage_checkpoint=checkpoints / 'garbage.pt', checkpoint_dir=checkpoints)
    a_file = root / 'a_file'
    a_file.write_text('')
    inputs['a_file'] = a_file

    # Issue 35: compressed chunks (a real zstd / lz4 compressor: the MCAP authors' writer),
    # one damaged in the middle, and more damage of the kinds robots make.
    from hybrid_depth_core.recordings.storage import rewrite_mcap

    def chunks(name: str, compression: str, change=None) -> None:
        def build(path: Path) -> None:
            rewrite_mcap(next(path.glob('*.mcap')), compression, chunk_size=40_000)
            if change:
                change(path)
        copy(name, build)

    def damage_chunk(path: Path, frame_header: bool = False) -> None:
        from mcap.reader import make_reader
        data = next(path.glob('*.mcap'))
        with open(data, 'rb') as file:
            indexes = sorted(make_reader(file).get_summary().chunk_indexes,
                             key=lambda c: c.chunk_start_offset)
        chunk = indexes[len(indexes) // 2]
        content = bytearray(data.read_bytes())
        at = (chunk.chunk_start_offset + 9 + 28 + 4 + len(chunk.compression) + 8 + 1
              if frame_header else chunk.chunk_start_offset + chunk.chunk_length // 2)
        content[at] ^= 0xFF
        data.write_bytes(bytes(content))
    chunks('zstd_damaged', 'zstd', damage_chunk)
    chunks('lz4_damaged', 'lz4', damage_chunk)
    chunks('zstd_frame_header', 'zstd', lambda path: damage_chunk(path, frame_header=True))
    chunks('lz4_frame_header', 'lz4', lambda path: damage_chunk(path, frame_header=True))
    split = inputs['split_cut'] = root / 'split_cut'
    if not split.exists():
        split_bag(good, split)
    wal = inputs['sqlite_wal'] = root / 'sqlite_wal'
    if not wal.exists():
        subprocess.run(COMMAND + ['sample', str(wal), '--frames', '12', '--width', '128',
                                  '--height', '64', '--storage', 'sqlite3'], check=True,
                       capture_output=True)
        killed_writer(next(wal.glob('*.db3')))
    # Fewer images than the skip limit (10), so reading never stops on its own.
    small = inputs['small'] = root / 'small'
    if not small.exists():
        subprocess.run(COMMAND + ['sample', str(small), '--frames', '8', '--width', '128',
                                  '--height', '64'], check=True, capture_output=True)
    rewrite_messages(inputs, root, 'all_undecodable', small, undecodable)
    rewrite_messages(inputs, root, 'binned', good, binned)
    rewrite_messages(inputs, root, 'roi', good, region)
    texts = root / 'texts'
    texts.mkdir(exist_ok=True)
    (texts / 'latin1_config.yaml').write_bytes('data:\n  width: 128  # caf\xe9\n'
                                               .encode('latin-1'))
    (texts / 'latin1_intrinsics.yaml').write_bytes(
        'fx: 100\nfy: 100\ncx: 64\ncy: 32\nwidth: 128\nheight: 64  # \xb5m\n'.encode('latin-1'))
    inputs.update(latin1_config=texts / 'latin1_config.yaml',
                  latin1_intrinsics=texts / 'latin1_intrinsics.yaml')
    results = inputs['results_dir'] = root / 'results_dir'
    results.mkdir(exist_ok=True)
    training = inputs['training_checkpoint'] = checkpoints / 'training.pt'
    if not training.exists():
        shutil.copyfile(CHECKPOINT, training)
    for name, make in (('link.pt', lambda p: p.symlink_to(training.name)),
                       ('hard.pt', lambda p: os.link(training, p))):
        if not (checkpoints / name).exists():
            make(checkpoints / name)
    inputs.update(checkpoint_link=checkpoints / 'link.pt',
                  checkpoint_hard_link=checkpoints / 'hard.pt')
    cache = inputs['truncated_cache'] = root / 'frame_cache'
    if not any(cache.glob('*.npz')):
        subprocess.run(COMMAND + ['train', '--bag', str(good), '--out', str(root / 'cache_run'),
                                  '--frame-stride', '1', *SMALL, f'data.cache_dir={cache}'],
                       check=True, capture_output=True)
        shutil.rmtree(root / 'cache_run')
    for path in cache.glob('*.npz'):  # cut again on every run: the last run rewrote them whole
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    return inputs


def split_bag(good: Path, split: Path) -> None:
    """The good recording as a recorder splitting by size writes it (two files, each with
    half the messages), the first file cut short."""
    from rosbags.highlevel import AnyReader
    from hybrid_depth_core.recordings.storage import bag_file_writer
    from hybrid_depth_core.messages.builders import TYPESTORE
    import yaml
    with AnyReader([good]) as reader:
        messages = list(reader.messages())
    halves = (messages[:len(messages) // 2], messages[len(messages) // 2:])
    infos = []
    for index, half in enumerate(halves):
        part = split.parent / f'{split.name}_part{index}'
        shutil.rmtree(part, ignore_errors=True)
        with bag_file_writer(part) as writer:
            added = {}
            for connection, time_ns, raw in half:
                key = connection.topic, connection.msgtype
                if key not in added:
                    added[key] = writer.add_connection(*key, typestore=TYPESTORE)
                writer.write(added[key], time_ns, raw)
        infos.append((part, yaml.safe_load((part / 'metadata.yaml').read_text())
                      ['rosbag2_bagfile_information']))
    split.mkdir()
    merged = dict(infos[0][1])
    merged['relative_file_paths'] = [f'{split.name}_{i}.mcap' for i in (0, 1)]
    merged['files'] = [dict(info['files'][0], path=f'{split.name}_{i}.mcap')
                       for i, (_, info) in enumerate(infos)]
    merged['message_count'] = sum(info['message_count'] for _, info in infos)
    counts = {}
    for _, info in infos:
        for entry in info['topics_with_message_count']:
            counts[entry['topic_metadata']['name']] = (
                counts.get(entry['topic_metadata']['name'], 0) + entry['message_count'])
    for entry in merged['topics_with_message_count']:
        entry['message_count'] = counts[entry['topic_metadata']['name']]
    (split / 'metadata.yaml').write_text(yaml.safe_dump({'rosbag2_bagfile_information': merged}))
    for index, (part, _) in enumerate(infos):
        content = next(part.glob('*.mcap')).read_bytes()
        (split / f'{split.name}_{index}.mcap').write_bytes(
            content[:int(len(content) * 0.6)] if index == 0 else content)
        shutil.rmtree(part)


def killed_writer(database: Path) -> None:
    """Leave the database as a recorder killed before it checkpointed does: the second half of
    its messages only in the write-ahead log."""
    script = f'''
import os, sqlite3
db = sqlite3.connect({str(database)!r})
half = db.execute('SELECT COUNT(*) FROM messages').fetchone()[0] // 2
rows = db.execute('SELECT id, topic_id, timestamp, data FROM messages WHERE id > ?',
                  (half,)).fetchall()
db.execute('DELETE FROM messages WHERE id > ?', (half,))
db.commit()
db.execute('PRAGMA journal_mode=WAL')
db.execute('PRAGMA wal_autocheckpoint=0')
db.executemany('INSERT INTO messages (id, topic_id, timestamp, data) VALUES (?, ?, ?, ?)', rows)
db.commit()
os._exit(0)
'''
    subprocess.run([sys.executable, '-c', script], check=True)


def rewrite_messages(inputs: dict, root: Path, name: str, source: Path, change) -> None:
    """A copy of `source` with change(topic, message) applied to every message."""
    path = inputs[name] = root / name
    if path.exists():
        return
    from rosbags.highlevel import AnyReader
    from hybrid_depth_core.recordings.storage import bag_file_writer
    from hybrid_depth_core.messages.builders import TYPESTORE
    with AnyReader([source]) as reader, bag_file_writer(path) as writer:
        connections = {}
        for connection, time_ns, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            change(connection.topic, message)
            if connection.topic not in connections:
                connections[connection.topic] = writer.add_connection(
                    connection.topic, connection.msgtype, typestore=TYPESTORE)
            writer.write(connections[connection.topic], time_ns,
                         TYPESTORE.serialize_cdr(message, connection.msgtype))


def set_image(message, rgb) -> None:
    message.height, message.width, message.step = rgb.shape[0], rgb.shape[1], 3 * rgb.shape[1]
    message.data = rgb.reshape(-1)


def undecodable(topic: str, message) -> None:
    if topic == '/camera/image_raw':
        message.data = message.data[:10]  # pixel data cut short


def binned(topic: str, message) -> None:  # REP 104: a 2x2-binned readout of the sensor
    if topic == '/camera/image_raw':
        rgb = message.data.reshape(message.height, message.width, 3).astype(np.float32)
        half = rgb.reshape(message.height // 2, 2, message.width // 2, 2, 3).mean((1, 3))
        set_image(message, half.round().astype(np.uint8))
    elif topic == '/camera/camera_info':  # width, height and K stay the sensor's
        message.binning_x = message.binning_y = 2


def region(topic: str, message) -> None:  # REP 104: a 64x32 region of interest at 32, 16
    if topic == '/camera/image_raw':
        rgb = message.data.reshape(message.height, message.width, 3)
        set_image(message, rgb[16:48, 32:96].copy())
    elif topic == '/camera/camera_info':
        roi = message.roi
        roi.x_offset, roi.y_offset, roi.width, roi.height = 32, 16, 64, 32


def cases(inputs: dict[str, Path], out: Path) -> list[tuple[str, list, Path | None, list]]:
    """(what, arguments, output that must not appear, inputs that must not change)."""
    good, ck = inputs['good'], CHECKPOINT
    return [
        ('train: batch_size=-1', ['train', '--bag', good, '--out', out / 't1', 'batch_size=-1'],
         out / 't1', [good]),
        ('train: learning_rate=abc', ['train', '--bag', good, '--out', out / 't2',
                                      'learning_rate=abc'], out / 't2', [good]),
        ('train: log_every=0', ['train', '--bag', good, '--out', out / 't3', 'log_every=0'],
         out / 't3', [good]),
        ('train: --out is the input bag', ['train', '--bag', good, '--out', good], None, [good]),
        ('train: --out inside the input bag', ['train', '--bag', good, '--out', good / 'run'],
         good / 'run', [good]),
        ('train: --out under a file', ['train', '--bag', good, '--out', inputs['a_file'] / 'r'],
         None, [good]),
        ('infer: checkpoint is a directory', ['infer', '--checkpoint', inputs['checkpoint_dir'],
                                              '--bag', good, '--out', out / 'i1'],
         out / 'i1', [good]),
        ('infer: checkpoint cut in half', ['infer', '--checkpoint', inputs['cut_checkpoint'],
                                           '--bag', good, '--out', out / 'i2'], out / 'i2',
         [good, inputs['cut_checkpoint']]),
        ('infer: checkpoint not a PyTorch file', ['infer', '--checkpoint',
                                                  inputs['garbage_checkpoint'], '--bag', good,
                                                  '--out', out / 'i3'], out / 'i3', [good]),
        ('infer: bag without metadata.yaml', ['infer', '--checkpoint', ck, '--bag',
                                              inputs['no_metadata'], '--out', out / 'i4'],
         out / 'i4', [inputs['no_metadata']]),
        ('infer: MCAP cut short (no flag)', ['infer', '--checkpoint', ck, '--bag',
                                             inputs['cut_summary'], '--out', out / 'i5'],
         out / 'i5', [inputs['cut_summary']]),
        ('infer: one flipped byte (chunk CRC)', ['infer', '--checkpoint', ck, '--bag',
                                                 inputs['flipped_byte'], '--out', out / 'i6'],
         out / 'i6', [inputs['flipped_byte']]),
        ('infer: sqlite3 cut (no flag)', ['infer', '--checkpoint', ck, '--bag',
                                          inputs['sqlite_cut'], '--out', out / 'i7'],
         out / 'i7', [inputs['sqlite_cut']]),
        ('infer: --out exists', ['infer', '--checkpoint', ck, '--bag', good, '--out', good],
         None, [good]),
        ('evaluate: MCAP cut short (no flag)', ['evaluate', '--checkpoint', ck, '--bag',
                                                inputs['cut_summary'], '--gt-depth-topic',
                                                '/camera/depth_gt'], None,
         [inputs['cut_summary']]),
        ('evaluate: one flipped byte', ['evaluate', '--checkpoint', ck, '--bag',
                                        inputs['flipped_byte'], '--gt-depth-topic',
                                        '/camera/depth_gt'], None, [inputs['flipped_byte']]),
        ('export: checkpoint cut in half', ['export', '--checkpoint', inputs['cut_checkpoint'],
                                            '--weights', out / 'e1.pt'], out / 'e1.pt',
         [inputs['cut_checkpoint']]),
        ('play: MCAP cut short (no flag)', ['play', inputs['cut_summary'], '--delay', '0'],
         None, [inputs['cut_summary']]),
        # Issue 35.
        ('infer: damaged zstd chunk (no flag)', ['infer', '--checkpoint', ck, '--bag',
                                                 inputs['zstd_damaged'], '--out', out / 'i11'],
         out / 'i11', [inputs['zstd_damaged']]),
        ('play: damaged zstd chunk (no flag)', ['play', inputs['zstd_damaged'], '--delay', '0',
                                                '--rate', '100'], None,
         [inputs['zstd_damaged']]),
        ('infer: split bag, a file cut short (no flag)',
         ['infer', '--checkpoint', ck, '--bag', inputs['split_cut'], '--out', out / 'i12'],
         out / 'i12', [inputs['split_cut']]),
        ('infer: every image undecodable (8 images)',
         ['infer', '--checkpoint', ck, '--bag', inputs['all_undecodable'], '--out', out / 'i8'],
         out / 'i8', [inputs['all_undecodable']]),
        ('evaluate: every image undecodable (8 images)',
         ['evaluate', '--checkpoint', ck, '--bag', inputs['all_undecodable'],
          '--gt-depth-topic', '/camera/depth_gt'], None, [inputs['all_undecodable']]),
        ("infer: --namespace '/my cam'",
         ['infer', '--checkpoint', ck, '--bag', good, '--out', out / 'i9', '--namespace',
          '/my cam'], out / 'i9', [good]),
        ("infer: --namespace '/robot1/2nd'",
         ['infer', '--checkpoint', ck, '--bag', good, '--out', out / 'i10', '--namespace',
          '/robot1/2nd'], out / 'i10', [good]),
        ('train: --config not UTF-8', ['train', '--config', inputs['latin1_config'], '--out',
                                       out / 't4'], out / 't4', [inputs['latin1_config']]),
        ('train: --intrinsics not UTF-8', ['train', '--bag', good, '--intrinsics',
                                           inputs['latin1_intrinsics'], '--out', out / 't5',
                                           *SMALL], out / 't5',
         [good, inputs['latin1_intrinsics']]),
        ('evaluate: --json is a directory', ['evaluate', '--checkpoint', ck, '--frames', '3',
                                             '--json', inputs['results_dir']], None,
         [inputs['results_dir']]),
        ('evaluate: --json is the checkpoint', ['evaluate', '--checkpoint',
                                                inputs['training_checkpoint'], '--frames', '3',
                                                '--json', inputs['training_checkpoint']], None,
         [inputs['training_checkpoint']]),
        ('export: --weights onto its --checkpoint, --force',
         ['export', '--checkpoint', inputs['training_checkpoint'], '--weights',
          inputs['training_checkpoint'], '--force'], None, [inputs['training_checkpoint']]),
        ('export: --weights onto a symlink to it, --force',
         ['export', '--checkpoint', inputs['training_checkpoint'], '--weights',
          inputs['checkpoint_link'], '--force'], None,
         [inputs['training_checkpoint'], inputs['checkpoint_link']]),
        ('export: --weights onto a hard link to it, --force',
         ['export', '--checkpoint', inputs['training_checkpoint'], '--weights',
          inputs['checkpoint_hard_link'], '--force'], None,
         [inputs['training_checkpoint'], inputs['checkpoint_hard_link']]),
        ('export: --onnx onto its --checkpoint, --force',
         ['export', '--checkpoint', inputs['training_checkpoint'], '--onnx',
          inputs['training_checkpoint'], '--force'], None, [inputs['training_checkpoint']]),
    ]


def survivors(inputs: dict[str, Path], out: Path) -> list[tuple[str, list, str]]:
    """Damaged or odd but usable input: (what, arguments, what the output must say). Each
    must exit 0 and say it."""
    ck, partial = CHECKPOINT, '--allow-partial-bags'
    infer = ['infer', '--checkpoint', ck, '--bag']
    return [
        ('infer --allow-partial-bags: MCAP cut short',
         [*infer, inputs['cut_summary'], '--out', out / 'p1', partial], 'recovered'),
        ('infer --allow-partial-bags: sqlite3 cut',
         [*infer, inputs['sqlite_cut'], '--out', out / 'p2', partial], 'recovered'),
        ('train --allow-partial-bags: MCAP cut short',
         ['train', '--bag', inputs['cut_summary'], '--out', out / 'p3', partial,
          '--frame-stride', '1', *SMALL], 'recovered'),
        ('infer --allow-partial-bags: damaged zstd chunk mid-file',
         [*infer, inputs['zstd_damaged'], '--out', out / 'p5', partial],
         'skipped a damaged chunk'),
        ('infer --allow-partial-bags: damaged lz4 chunk mid-file',
         [*infer, inputs['lz4_damaged'], '--out', out / 'p6', partial],
         'skipped a damaged chunk'),
        ('infer --allow-partial-bags: zstd frame header damaged (decompressor error)',
         [*infer, inputs['zstd_frame_header'], '--out', out / 'p7', partial], 'ZstdError'),
        ('infer --allow-partial-bags: lz4 frame header damaged (decompressor error)',
         [*infer, inputs['lz4_frame_header'], '--out', out / 'p8', partial],
         'skipped a damaged chunk'),
        ('evaluate --allow-partial-bags: damaged zstd chunk mid-file',
         ['evaluate', '--checkpoint', ck, '--bag', inputs['zstd_damaged'], '--gt-depth-topic',
          '/camera/depth_gt', partial], 'skipped a damaged chunk'),
        ('play --allow-partial-bags: damaged zstd chunk mid-file',
         ['play', inputs['zstd_damaged'], '--delay', '0', '--rate', '100', partial],
         'skipped a damaged chunk'),
        ('infer --allow-partial-bags: split bag, first file cut short',
         [*infer, inputs['split_cut'], '--out', out / 'p9', partial], 'recovered'),
        ('infer: sqlite3 with the write-ahead log of a killed recorder',
         [*infer, inputs['sqlite_wal'], '--out', out / 'p10'], 'write-ahead log'),
        ('train: sqlite3 with the write-ahead log of a killed recorder',
         ['train', '--bag', inputs['sqlite_wal'], '--out', out / 'p11', '--frame-stride', '1',
          *SMALL], 'write-ahead log'),
        ('infer: camera_info binned 2x2, image 64x32',
         [*infer, inputs['binned'], '--out', out / 'v1'], '/camera/depth/image 12'),
        ('infer: camera_info ROI 64x32 at 32,16, image 64x32',
         [*infer, inputs['roi'], '--out', out / 'v2'], '/camera/depth/image 12'),
        ("infer: --namespace '/robot1/front'",
         [*infer, inputs['good'], '--out', out / 'v3', '--namespace', '/robot1/front'],
         '/robot1/front/depth/image 12'),
        ('train: frame cache cut short', ['train', '--bag', inputs['good'], '--out', out / 'p4',
                                          '--frame-stride', '1', *SMALL,
                                          f'data.cache_dir={inputs["truncated_cache"]}'],
         'cannot be read'),
        ('train --device cpu under torchrun, 2 processes (gloo)',
         ['-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
          '--master_port', '29533', '-m', 'hybrid_depth_ros.cli', 'train', '--bag',
          inputs['good'], '--out', out / 'd1', '--device', 'cpu', '--frame-stride', '1',
          *SMALL], 'checkpoint:'),
    ]


def killed_kernel_build(root: Path) -> dict:
    """A start killed while it compiles the cost-volume kernel, then a second start: it must
    finish (before: it waited forever on the first one's lock)."""
    extensions = root / 'torch_extensions'  # its own: the kernel must be compiled, not cached
    shutil.rmtree(extensions, ignore_errors=True)
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(extensions))
    evaluate = COMMAND + ['evaluate', '--checkpoint', str(CHECKPOINT), '--frames', '3',
                          '--synthetic-seeds', '1000', '--device', 'cpu']
    killed = subprocess.Popen(evaluate, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    while not list(extensions.glob('hybrid_depth/.*.build-*/*.ninja')) and killed.poll() is None:
        time.sleep(0.5)
    time.sleep(5)  # mid-compile
    os.killpg(killed.pid, signal.SIGKILL)  # ninja and the compiler too
    killed.wait()
    result = subprocess.run(evaluate, env=env, capture_output=True, text=True, timeout=900)
    said = next((line for line in result.stderr.splitlines() if 'unfinished build' in line), '')
    return {'case': 'evaluate after a start killed mid-compile of the kernel',
            'exit': result.returncode, 'ok': result.returncode == 0 and bool(said),
            'said': said}


def judge(what: str, result: subprocess.CompletedProcess, output: Path | None, before: str,
          after: str) -> dict:
    errors = [line for line in result.stderr.splitlines() if ': error: ' in line]
    return {'case': what, 'exit': result.returncode, 'one_line': len(errors) == 1,
            'no_traceback': 'Traceback' not in result.stderr,
            'no_output': output is None or not output.exists(),
            'input_unchanged': before == after,
            'message': errors[-1].split(': error: ', 1)[1] if errors else result.stderr[-200:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('out/bad_input'))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    inputs = build_inputs(args.out / 'inputs')
    outputs = args.out / 'outputs'
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir()
    rows = []
    for what, arguments, output, watched in cases(inputs, outputs):
        before = digest(watched)
        result = hybrid_depth(*arguments)
        rows.append(judge(what, result, output, before, digest(watched)))
        print(f'{what}: exit {result.returncode}', flush=True)
    # Damaged but usable: they must still be used, and say what they lost.
    recovered = []
    for what, arguments, must_say in survivors(inputs, outputs):
        command = ([sys.executable, *map(str, arguments)] if arguments[0] == '-m' else
                   COMMAND + [str(a) for a in arguments])
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        lines = (result.stdout + result.stderr).splitlines()
        said = next((line for line in lines if must_say in line), '')
        recovered.append({'case': what, 'exit': result.returncode,
                          'ok': result.returncode == 0 and bool(said),
                          'said': said or (lines[-1] if lines else '')})
        print(f'{what}: exit {result.returncode}', flush=True)
    recovered.append(killed_kernel_build(args.out))
    (args.out / 'results.json').write_text(json.dumps({'bad': rows, 'recovered': recovered},
                                                      indent=2))
    print('\n| bad input | exit | one line | no traceback | no output | input unchanged | '
          'message |\n|---|---|---|---|---|---|---|')
    for row in rows:
        checks = ('one_line', 'no_traceback', 'no_output', 'input_unchanged')
        marks = ['yes' if row[check] else '**no**' for check in checks]
        print(f'| {row["case"]} | {row["exit"]} | ' + ' | '.join(marks)
              + f' | {row["message"][:160]} |')
    print('\n| damaged or odd, must work | exit | works and says so | what it said |\n'
          '|---|---|---|---|')
    for row in recovered:
        print(f'| {row["case"]} | {row["exit"]} | {"yes" if row["ok"] else "**no**"} | '
              f'{row["said"][:200]} |')
    held = sum(all(row[c] for c in ('one_line', 'no_traceback', 'no_output', 'input_unchanged'))
               and row['exit'] != 0 for row in rows) + sum(row['ok'] for row in recovered)
    print(f'\nhandled: {held} of {len(rows) + len(recovered)}')


if __name__ == '__main__':
    main()
