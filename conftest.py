"""Fixtures for every test, the >>> examples of README.md and the docstrings included."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Keeps tests from reading or writing the user's ~/.cache/avbench."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AVBENCH_HOME", str(tmp_path_factory.mktemp("avbench-home")))
    yield
    mp.undo()
