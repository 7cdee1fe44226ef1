"""The one exception type the command line turns into a clear message and a non-zero exit status."""


class AvseBenchError(Exception):
    """A problem the user can fix (bad input, missing files, unknown system); the message says what and where."""
