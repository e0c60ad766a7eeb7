"""Lock files shared by threads and worker processes (flock), and the one question every holder must ask.

A lock file can be removed by its last holder while another process waits to lock it; the waiter then holds a
lock on a file no longer at that path, which protects nothing. So after taking a lock, a holder checks that the
file it holds is still the one on disk, and opens the path again when it is not.
"""

from __future__ import annotations

import os
from pathlib import Path


def is_current(fd: int, path: Path) -> bool:
    """Is `fd` still the file at `path`, or was it removed (or replaced) while we waited for it?"""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)
