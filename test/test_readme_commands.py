"""Every `hybrid-depth` command in the README's shell blocks is one the command line accepts:
options that exist, values of the right kind. Synopses are checked with every optional part
written in and the first of each `a|b` choice."""
import re
import shlex
from pathlib import Path

import pytest

from hybrid_depth_ros.cli import parse_arguments

README = Path(__file__).resolve().parents[1] / 'README.md'


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', README.read_text(), re.S):
        lines = []
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].rstrip()
            if line[:1].isspace() and lines:  # a synopsis continued on an indented line
                lines[-1] += ' ' + line.strip()
            else:
                lines.append(line.strip())
        commands += [' '.join(line.split()) for line in lines
                     if line.startswith('hybrid-depth ') and '...' not in line]  # "and so on"
    return commands


def test_the_readme_shows_the_commands_of_each_section():
    shown = {command.split()[1] for command in readme_commands()}
    assert shown >= {'train', 'infer', 'evaluate', 'bench', 'export', 'sample'}
    synopsis = next(command for command in readme_commands() if ' bench ' in f' {command} ')
    assert '--checkpoint' in synopsis  # its indented second line was joined


@pytest.mark.parametrize('command', readme_commands())
def test_readme_command_parses(command):
    written_in = re.sub(r'\[([^\]]*)\]', r'\1', command)
    argv = [word.split('|')[0] for word in shlex.split(written_in)][1:]
    args = parse_arguments(argv)  # argparse exits (a test error) on a bad option
    assert args.command == argv[0]
