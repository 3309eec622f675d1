"""The user's text files (configs, intrinsics, parameter files, split files), read in one place
so that every way one can be wrong (missing, unreadable, not UTF-8, not YAML) is a UserError
naming the file, never a traceback."""
from __future__ import annotations

from pathlib import Path

import yaml

from hybrid_depth_core.errors import UserError, one_line

# PyYAML's constructors raise plain ValueError (a month 13) and AttributeError (a malformed
# !!timestamp) besides YAMLError; all of them are about the text.
_YAML_ERRORS = (yaml.YAMLError, ValueError, AttributeError)


def read_text(path: Path, what: str) -> str:
    """The text of the file at `path`, UTF-8 (a leading byte-order mark, as some editors
    write, is dropped); `what` names it in errors ('config', 'intrinsics')."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f'cannot read {what} {path}: {error.strerror}') from None
    try:
        # Decoded here, not by the locale: a C or Latin-1 locale would read UTF-8 files wrong.
        return data.decode('utf-8-sig')
    except UnicodeDecodeError as error:
        raise UserError(f'{what} {path} is not UTF-8 text (byte 0x{data[error.start]:02x} at '
                        f'offset {error.start}); save it as UTF-8') from None


def parse_yaml(text: str, what: str):
    """The YAML value of `text`; `what` names where it came from in errors."""
    try:
        return yaml.safe_load(text)
    except _YAML_ERRORS as error:
        raise UserError(f'{what} is not valid YAML: {one_line(error)}') from None


def read_yaml(path: Path, what: str):
    """The YAML value of the file at `path` (None for an empty file), read as `read_text`."""
    return parse_yaml(read_text(path, what), f'{what} {path}')
