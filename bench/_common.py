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
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, {tv}"


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
