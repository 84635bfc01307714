"""Helpers for benchmark scripts: machine description and BENCHMARKS.md sections.

Each benchmark owns one section of BENCHMARKS.md between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->`` and rewrites only that section, so the scripts can run in any order.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "BENCHMARKS.md"
SHARED_DATA = Path(os.environ.get("FACEDUB_SHARED_DATA", REPO.parent / "shared" / "data"))

HEADER = """# facedub benchmarks

Figures written by the scripts in `bench/`. Each section names the machine, the command that
produced it and the date. Rerun a section with its command; the others stay as they are.
"""


_GEMM: dict[str, float] = {}


def gemm_gflops(dtype: object = None, n: int = 1024, reps: int = 8) -> float:
    """Best-of-3 GFLOP/s of an n×n matmul in ``dtype`` (default fp32) on torch's current threads."""
    import time

    import torch

    dtype = torch.float32 if dtype is None else dtype
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
    return best


def cpu_flags() -> str:
    """The vector units that decide CPU speed here: avx512*/amx/avx2 from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                keep = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f in flags]
                return "+".join(keep) if keep else ("avx2, no AVX-512" if "avx2" in flags else "no AVX2")
    except OSError:
        pass
    return "unknown"


def gemm_line() -> str:
    """'fp32 GEMM N GFLOP/s (1024², all threads)', measured once per process."""
    if "fp32" not in _GEMM:
        try:
            _GEMM["fp32"] = gemm_gflops()
        except Exception:  # torch is optional for some benchmarks
            return "GEMM not measured (no torch)"
    return f"fp32 GEMM {_GEMM['fp32']:.0f} GFLOP/s (1024², measured at write time; the host is shared, so it drifts)"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        tv = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except Exception:  # torch is optional for some benchmarks
        tv = "no torch"
    return f"{cpu} ({cpu_flags()}), {os.cpu_count()} logical CPUs, Python {platform.python_version()}, {tv}; {gemm_line()}"


def command() -> str:
    return "python " + shlex.join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def _section_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- bench:{re.escape(name)} -->(.*?)<!-- /bench:{re.escape(name)} -->", re.S)


def read_section(name: str) -> str | None:
    """The text now between the markers of section ``name`` of BENCHMARKS.md, if any."""
    if not BENCHMARKS.exists():
        return None
    m = _section_pattern(name).search(BENCHMARKS.read_text())
    return m.group(1) if m else None


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md."""
    today = _dt.date.today().isoformat()
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"- Machine: {machine()}\n- Command: `{command()}`\n- Date: {today}\n\n{body.rstrip()}\n<!-- /bench:{name} -->"
    )
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else HEADER
    pattern = _section_pattern(name)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = BENCHMARKS.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, BENCHMARKS)
