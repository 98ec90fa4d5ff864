"""This host's processes and the folders they keep in shared memory (kept free of heavy
imports: the aggregator's spawned readers import it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SHARED_MEMORY = Path("/dev/shm")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (one of another user's included)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or a number no pid can be
        return False
    except PermissionError:  # another user's process
        return True
    return True


def shared_memory() -> Path | None:
    """The host's shared memory (/dev/shm) when this process may make folders there, else
    None: files there are in memory, where a full disk cannot fail their writes."""
    if SHARED_MEMORY.is_dir() and os.access(SHARED_MEMORY, os.W_OK | os.X_OK):
        return SHARED_MEMORY
    return None


def remove_abandoned(parent: Path, prefix: str) -> None:
    """Remove the folders in `parent` named `<prefix><pid>-...` whose process is gone: each
    process names its folders after itself and removes them, unless it was killed first."""
    if not parent.is_dir():
        return
    for path in parent.iterdir():
        owner = path.name.removeprefix(prefix).split("-", 1)[0]
        if path.name.startswith(prefix) and owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)
