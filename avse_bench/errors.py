"""The one exception type the command line turns into a clear message and a non-zero exit status."""


class AvseBenchError(Exception):
    """A problem the user can fix (bad input, missing files, unknown system); the message says what and where."""


_WORKER_MARK = "avse_bench.errors.AvseBenchError: "


def user_message(err: AvseBenchError) -> str:
    """The message to show for `err`. A DataLoader worker's AvseBenchError reaches the main process re-raised with
    the worker's whole traceback as its message ("Caught AvseBenchError in DataLoader worker process 0. Original
    Traceback ..."): the user sees only the original message, as for an error raised in the main process."""
    text = str(err)
    if "Original Traceback" in text and _WORKER_MARK in text:
        return text[text.rindex(_WORKER_MARK) + len(_WORKER_MARK):].strip()
    return text
