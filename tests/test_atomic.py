"""Atomic writes: a failed write leaves the old file and no temporary behind."""

import pytest

from avbench.atomic import atomic_path


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "record.json"
    with atomic_path(target) as tmp:
        tmp.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]
