"""A function for a worker process to run that imports nothing itself (tests of what a worker starts with)."""

import sys


def loaded(names: list[str]) -> list[bool]:
    """Whether each module is already imported in this process."""
    return [name in sys.modules for name in names]
