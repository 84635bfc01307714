"""Fixtures for the safety tests: a private FACEDUB_HOME, textured test clips, attacks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def facedub_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep C2PA keys out of the real ~/.config (one local CA per test session)."""
    home = tmp_path_factory.getbasetemp() / "facedub-home"  # the same key as tests/conftest.py
    monkeypatch.setenv("FACEDUB_HOME", str(home))
    monkeypatch.delenv("FACEDUB_C2PA_CERT", raising=False)
    monkeypatch.delenv("FACEDUB_C2PA_KEY", raising=False)
    return home


def textured_frames(n: int = 30, size: tuple[int, int] = (256, 256), seed: int = 0) -> list[np.ndarray]:
    """Frames of smooth random colour texture drifting slowly, with a moving bright disc."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    big = rng.random((h + 64, w + 64, 3)).astype(np.float32)
    big = cv2.GaussianBlur(big, (0, 0), 6)
    big = (big - big.min()) / (big.max() - big.min() + 1e-6)
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        f = big[i : i + h, i : i + w] * 200 + 30
        cx, cy = w / 2 + 40 * np.sin(i / 5), h / 2 + 30 * np.cos(i / 7)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2) < (min(w, h) / 6) ** 2
        f[disc] = f[disc] * 0.4 + 140
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def encode_h264(frames: list[np.ndarray], path: Path | None = None, crf: int = 18, fps: int = 25) -> bytes | Path:
    """H.264 yuv420p MP4 of the frames (to ``path``, or returned as bytes)."""
    import av

    target = str(path) if path is not None else io.BytesIO()
    h, w = frames[0].shape[:2]
    with av.open(target, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path if path is not None else target.getvalue()  # type: ignore[union-attr]


def decode_all(data: bytes | Path) -> list[np.ndarray]:
    import av

    src = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    with av.open(src) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def reencode(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    return decode_all(encode_h264(frames, crf=crf))  # type: ignore[arg-type]


def jpeg(rgb: np.ndarray, quality: int = 85) -> np.ndarray:
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))


def downscale(rgb: np.ndarray, factor: float = 0.5) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (int(w * factor), int(h * factor)), interpolation=cv2.INTER_AREA)


def crop10(rgb: np.ndarray) -> np.ndarray:
    """Keep the central 90 % of each side (an off-grid offset of 5 %)."""
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[int(h * 0.05) : int(h * 0.95), int(w * 0.05) : int(w * 0.95)])


def read_segment(path: Path, n: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) >= n:
                break
    return out
