"""Shared fixtures. Tests that read ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FACEDUB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _facedub_home_session(tmp_path_factory: pytest.TempPathFactory):
    """The same FACEDUB_HOME for session- and module-scoped fixtures: consent records they
    make are signed with the key the tests then trust (one signing key per test session)."""
    old = os.environ.get("FACEDUB_HOME")
    os.environ["FACEDUB_HOME"] = str(tmp_path_factory.getbasetemp() / "facedub-home")
    yield
    if old is None:
        os.environ.pop("FACEDUB_HOME", None)
    else:
        os.environ["FACEDUB_HOME"] = old


@pytest.fixture(autouse=True)
def _facedub_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the signing CA and other per-user state out of the real home folder."""
    monkeypatch.setenv("FACEDUB_HOME", str(tmp_path_factory.getbasetemp() / "facedub-home"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when it is not there."""
    if not (SHARED_DATA / "synthetic" / "aiface1" / "speech_512.mp4").is_file():
        pytest.skip(f"shared test media not found at {SHARED_DATA} (clone the project beside ../shared to run this)")
    return SHARED_DATA


def write_test_video(path: Path, frames: int = 10, size: tuple[int, int] = (64, 48), fps: int = 25, audio: bool = False) -> Path:
    """A tiny H.264 MP4 of moving colour gradients (and optionally a sine tone), made with PyAV."""
    import av

    w, h = size
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        a_stream = None
        if audio:
            a_stream = c.add_stream("aac", rate=44100)
            a_stream.layout = "mono"
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(frames):
            img = np.stack([(xx * 4 + i * 8) % 256, (yy * 4) % 256, np.full_like(xx, (i * 20) % 256)], -1).astype(np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        if a_stream is not None:
            n = int(44100 * frames / fps)
            t = np.arange(n) / 44100
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            for start in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(samples[:, start : start + 1024], format="fltp", layout="mono")
                af.sample_rate = 44100
                for p in a_stream.encode(af):
                    c.mux(p)
            for p in a_stream.encode(None):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
    return path
