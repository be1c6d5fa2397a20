"""Read-only and shared corpora: a store nobody may write is still usable, and what avbench
creates is readable by colleagues (permissions follow the umask)."""

import os
import shutil
import stat


from avbench.data import FeatureStore, load_splits
from avbench.data.synthetic import generate_synthetic
from avbench.runner import run


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_read_only_store_is_usable_and_splits_go_to_the_cache(tiny_store, tmp_path, monkeypatch, read_only):
    monkeypatch.setenv("AVBENCH_HOME", str(tmp_path / "home"))
    store_dir = tmp_path / "shared"
    shutil.copytree(tiny_store.path, store_dir, ignore=shutil.ignore_patterns("splits.json"))
    for p in store_dir.iterdir():
        p.chmod(0o444)
    read_only(store_dir)
    try:
        summary = run("standard", ["mult"], corpus=store_dir, profile="smoke", seeds=1, out=tmp_path / "out",
                      progress=False, echo=lambda s: None)
        assert not summary.table.empty
        assert not (store_dir / "splits.json").exists()
        cached = list((tmp_path / "home" / "splits").glob("*.json"))
        assert len(cached) == 1
        # the cache gives the same splits as the store's own file would
        assert load_splits(FeatureStore.open(store_dir), 1) == load_splits(tiny_store, 1)
    finally:
        for p in store_dir.iterdir():
            p.chmod(0o644)


def test_created_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        store = generate_synthetic(tmp_path / "store", seed=0, n_speakers=9, clips_per_speaker=2, visual_dim=2)
        run("standard", ["mult"], corpus=store.path, profile="smoke", seeds=1, out=tmp_path / "out",
            progress=False, echo=lambda s: None)
    finally:
        os.umask(old)
    assert mode(store.path) == 0o755
    assert {mode(p) for p in store.path.iterdir()} == {0o644}
    created = list((tmp_path / "out").rglob("*"))
    assert {mode(p) for p in created if p.is_file()} == {0o644}
    assert {mode(p) for p in created if p.is_dir()} == {0o755}
