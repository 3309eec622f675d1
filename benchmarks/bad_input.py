"""Bad input, as a new user would give it: build damaged recordings, broken checkpoints and
nonsense settings, run the commands on them, and check what each left behind.

    python benchmarks/bad_input.py [--out out/bad_input]

Every bad input must end in exit code != 0 with one line naming the input and the problem, no
traceback, nothing under the output's final name, and its inputs unchanged (hashed before and
after). The recordings cut short must still train and infer with --allow-partial-bags. Prints
a Markdown table for docs/benchmarks.md and writes OUT/results.json.
"""
import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

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
    return inputs


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
    ]


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
    # The recordings cut short, with the flag: they must still be used.
    recovered = []
    for what, arguments in [
            ('infer --allow-partial-bags: MCAP cut short',
             ['infer', '--checkpoint', CHECKPOINT, '--bag', inputs['cut_summary'], '--out',
              outputs / 'p1', '--allow-partial-bags']),
            ('infer --allow-partial-bags: sqlite3 cut',
             ['infer', '--checkpoint', CHECKPOINT, '--bag', inputs['sqlite_cut'], '--out',
              outputs / 'p2', '--allow-partial-bags']),
            ('train --allow-partial-bags: MCAP cut short',
             ['train', '--bag', inputs['cut_summary'], '--out', outputs / 'p3',
              '--allow-partial-bags', '--frame-stride', '1', *SMALL])]:
        result = hybrid_depth(*arguments)
        recovered.append({'case': what, 'exit': result.returncode,
                          'said': next((line for line in (result.stdout + result.stderr)
                                        .splitlines() if 'recovered' in line), '')})
        print(f'{what}: exit {result.returncode}', flush=True)
    (args.out / 'results.json').write_text(json.dumps({'bad': rows, 'recovered': recovered},
                                                      indent=2))
    print('\n| bad input | exit | one line | no traceback | no output | input unchanged | '
          'message |\n|---|---|---|---|---|---|---|')
    for row in rows:
        checks = ('one_line', 'no_traceback', 'no_output', 'input_unchanged')
        marks = ['yes' if row[check] else '**no**' for check in checks]
        print(f'| {row["case"]} | {row["exit"]} | ' + ' | '.join(marks)
              + f' | {row["message"][:160]} |')
    print('\n| recording cut short, with the flag | exit | what it said |\n|---|---|---|')
    for row in recovered:
        print(f'| {row["case"]} | {row["exit"]} | {row["said"][:200]} |')


if __name__ == '__main__':
    main()
