"""Making a rename or a new name survive a crash: the directory entry must reach the disk too.

`os.replace` and `os.link` change a directory; until that directory is fsynced, a power loss
can bring back the old entry (or none) even though the file's own data was fsynced (see
fsync(2): "fsync() on the file does not necessarily ensure that the entry in the directory
containing the file has also reached disk"). The run state and the seal key both rely on it.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
