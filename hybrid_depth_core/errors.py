"""Errors about the user's input: reported as one clear line, never as a traceback."""


class UserError(Exception):
    """Bad input (a path, an argument, a file's content). The message names the input and what
    is wrong with it; the command line prints it and exits non-zero."""
