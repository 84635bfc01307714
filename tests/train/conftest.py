"""Fixtures of the train tests: two synthetic facesets (made once per session)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _fakefaces():
    spec = importlib.util.spec_from_file_location("fakefaces", Path(__file__).with_name("fakefaces.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def fakefaces():
    return _fakefaces()


@pytest.fixture(scope="session")
def two_facesets(tmp_path_factory, fakefaces) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("facesets")
    a = fakefaces.make_faceset(root / "alice", "alice", n=40, seed=0)
    b = fakefaces.make_faceset(root / "bob", "bob", n=40, seed=1)
    return a, b
