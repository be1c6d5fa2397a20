"""Where avbench keeps generated data (synthetic corpora, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """Returns avbench's data directory, creating it on demand.

    ``$AVBENCH_HOME`` wins so that clusters and tests can point avbench at
    scratch space; otherwise ``~/.cache/avbench`` keeps data out of the repo.
    """
    env = os.environ.get("AVBENCH_HOME")
    home = Path(env).expanduser() if env else Path.home() / ".cache" / "avbench"
    home.mkdir(parents=True, exist_ok=True)
    return home
