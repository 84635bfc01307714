"""The benchmark scripts are only run by hand, for minutes: at least they must compile cleanly."""

import warnings
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_script_compiles_without_warnings(script):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. SyntaxWarning: 'str' object is not callable (a missing +)
        compile(script.read_text(encoding="utf-8"), str(script), "exec")
