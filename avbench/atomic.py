"""Atomic file writes: a killed run leaves the old file or the new one, never half of one.

Temporaries are hidden siblings named after the writing host and process
(``.NAME.HOST-PID.XXXX.tmp``), so a later run can tell the leftovers of a killed writer
(:func:`remove_stale_temporaries`) from the files of a writer still at work, also when the
writers are cluster workers on other hosts sharing the run directory.  Finished files
get the permissions of any file the user creates (0666 less the umask), not the 0600 of a
temporary, so colleagues can read a shared store or run directory.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_TEMPORARY = re.compile(r"^\..+\.(?:([A-Za-z0-9_-]+)-)?(\d+)\.[^.]+\.tmp")
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"  # dots too: 10.0.0.1 -> 10_0_0_1
# another host's temporary: its writer's liveness cannot be checked from here, so it is removed
# only when no writer could still be at it (a unit's write takes seconds, not a day)
OTHER_HOST_STALE_SECONDS = 24 * 3600


def umask() -> int:
    """The process's umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_prefix(name: str) -> str:
    """The prefix of a temporary standing in for ``name``, naming this process."""
    return f".{name}.{HOST}-{os.getpid()}."


def make_public(path: Path, directory: bool = False) -> None:
    """Gives ``path`` the permissions a plain ``open``/``mkdir`` would have (umask applied)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temporary sibling of ``path`` to write; renames it onto ``path`` on success and
    removes it on failure.  ``suffix`` keeps writers that add an extension (``np.savez``) happy."""
    from avbench.faults import crash_point

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.name), suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        make_public(Path(tmp))
        crash_point("atomic-write")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _stale(host: str | None, pid: int, path: Path) -> bool:
    """Whether the writer of a temporary is gone: a dead process of this host, or a day-old file of another."""
    if host not in (None, HOST):
        try:
            return time.time() - path.lstat().st_mtime > OTHER_HOST_STALE_SECONDS
        except FileNotFoundError:
            return False
    return pid != os.getpid() and not _alive(pid)


def remove_stale_temporaries(directory: Path, name: str | None = None) -> list[Path]:
    """Removes the temporaries (files or directories) of writers that no longer run, e.g. after
    a kill -9, and returns what it removed: everywhere under ``directory``, or with ``name``
    only those standing in for ``directory/name``."""
    removed: list[Path] = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    walk = os.walk(directory) if name is None else [(str(directory), [], os.listdir(directory))]
    for root, dirs, files in walk:
        for entry in list(dirs) + files:
            m = _TEMPORARY.match(entry)
            if name is not None and not entry.startswith(f".{name}."):
                continue
            p = Path(root) / entry
            if not m or not _stale(m.group(1), int(m.group(2)), p):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
                if entry in dirs:
                    dirs.remove(entry)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed
