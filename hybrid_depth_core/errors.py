"""Errors about the user's input: reported as one clear line, never as a traceback."""


class UserError(Exception):
    """Bad input (a path, an argument, a file's content). The message names the input and what
    is wrong with it; the command line prints it and exits non-zero."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error message as one line of at most `limit` characters (PyTorch and
    OpenCV messages span many lines), for a UserError or a log line that quotes it."""
    text = ' '.join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + '...'
