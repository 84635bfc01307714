"""`facedub swap`'s consent questions: no terminal, input ending, Ctrl-C — one line, never a traceback."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.media import gen

FACEDUB = [sys.executable, "-m", "facedub"]


def _inputs(tmp_path: Path) -> list[str]:
    src = gen.write_video(tmp_path / "src.mp4", frames=4, size=(64, 64))
    tgt = gen.write_video(tmp_path / "tgt.mp4", frames=4, size=(64, 64))
    return ["swap", "--source", str(src), "--target", str(tgt), "--out", str(tmp_path / "out.mp4"), "--steps", "1"]


def _written(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.iterdir()} - {"src.mp4", "tgt.mp4"}


def test_closed_stdin_is_one_line_not_a_traceback(tmp_path):
    """stdin closed (sys.stdin is None) used to end in 'internal error: AttributeError', exit 3."""
    r = subprocess.run([*FACEDUB, *_inputs(tmp_path)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       preexec_fn=lambda: os.close(0), timeout=120)
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    # No terminal to ask on: the missing consent is a refusal (exit 1), as for any pipe.
    assert r.returncode == 1 and len(lines) == 1 and "no consent record" in lines[0] and "--source-consent" in lines[0]
    assert _written(tmp_path) == set()


def _prompt_then(tmp_path: Path, action) -> subprocess.CompletedProcess:  # noqa: ANN001
    """Run swap with a pseudo-terminal as stdin; once the first question shows, do ``action(proc, master)``."""
    master, slave = os.openpty()
    proc = subprocess.Popen([*FACEDUB, *_inputs(tmp_path)], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    err = b""
    deadline = time.monotonic() + 120
    try:
        while b"[y/N]" not in err:
            assert time.monotonic() < deadline, err
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stderr.fileno(), 4096)
                assert chunk, err  # exited before asking
                err += chunk
        action(proc, master)
        out, rest = proc.communicate(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), (err + rest).decode())


@pytest.mark.parametrize("how", ["end of input", "ctrl-c"])
def test_unanswered_consent_questions_are_one_line_exit_2(tmp_path, how):
    def act(proc, master):  # noqa: ANN001
        if how == "end of input":
            os.write(master, b"y\n\x04")  # yes, then Ctrl-D at the next question
        else:
            proc.send_signal(signal.SIGINT)

    r = _prompt_then(tmp_path, act)
    errors = [line for line in r.stderr.splitlines() if line.startswith("facedub:")]
    assert "Traceback" not in r.stderr
    assert r.returncode == 2 and len(errors) == 1 and "consent questions for the source person were not answered" in errors[0]
    assert ("input ended" if how == "end of input" else "interrupted") in errors[0]
    assert _written(tmp_path) == set()  # no consent file, no project folder
