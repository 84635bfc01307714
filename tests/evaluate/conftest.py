"""Fixtures for eval tests: short clips cut from ../shared/data and small facesets built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CLIP_FRAMES = 60


def read_frames(video: Path, n: int, start: int = 0) -> list[np.ndarray]:
    from facedub.media.reader import open_media

    return [f.rgb for f in open_media(video).frames(start=start, limit=n)]


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25, crf: int = 18) -> Path:
    """Encode RGB frames as H.264 with the writer convert uses."""
    from facedub.media.writer import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps, crf=crf) as wr:
        for img in frames:
            wr.write(img)
    return path


def faceset_with_descriptor(folder: Path, descriptor: np.ndarray | None = None) -> Path:
    """A one-face faceset whose face already has a descriptor (no crop needed)."""
    from facedub.faceset import FaceRecord, Faceset, save_faceset

    d = np.full(128, 0.05) if descriptor is None else descriptor
    lm = tuple((float(x), float(y)) for x, y in np.random.default_rng(0).uniform(0, 100, (68, 2)))
    rec = FaceRecord(
        file="faces/none.png", source=0, frame=0, time=0.0, bbox=(0.0, 0.0, 100.0, 100.0), landmarks=lm,
        affine=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), det_score=1.0, sharpness=1.0, descriptor=tuple(float(v) for v in d),
    )
    folder.mkdir(parents=True, exist_ok=True)
    save_faceset(Faceset(id="test-one", faces=(rec,)), folder)
    return folder


def gradient_frames(n: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> list[np.ndarray]:
    """Moving colour gradients without faces."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.stack([(xx * 4 + i * 8 + seed) % 256, (yy * 4) % 256, np.full_like(xx, (i * 20) % 256)], -1).astype(np.uint8) for i in range(n)]


@pytest.fixture
def tools() -> object:
    """The helpers above, for tests (conftest modules are not importable by name)."""

    class _T:
        write_clip = staticmethod(write_clip)
        faceset_with_descriptor = staticmethod(faceset_with_descriptor)
        gradient_frames = staticmethod(gradient_frames)
        build_faceset = staticmethod(build_faceset)

    return _T


def build_faceset(video: Path, out: Path, frames: int = 80, every: int = 8, descriptors: bool = True) -> Path:
    """A faceset of aligned crops (with or without descriptors) from the first frames of ``video``."""
    from facedub.faces.align import CROP_SIZE, align_matrix, warp
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.faceset import FaceRecord, Faceset, SourceRecord, save_faceset
    from facedub.fileio import write_png
    from facedub.media.reader import open_media

    (out / "faces").mkdir(parents=True, exist_ok=True)
    enc = IdentityEncoder() if descriptors else None
    recs = []
    reader = open_media(video)
    with FaceDetector() as det:
        for fr in reader.frames(every=every, limit=max(1, frames // every)):
            faces = det.detect(fr.rgb)
            if not faces:
                continue
            f = faces[0]
            m = align_matrix(f.points5)
            name = f"faces/f{fr.index:06d}_0.png"
            write_png(out / name, warp(fr.rgb, m, CROP_SIZE))
            recs.append(
                FaceRecord(
                    file=name,
                    source=0,
                    frame=fr.index,
                    time=fr.time,
                    bbox=f.bbox,
                    landmarks=tuple(tuple(float(v) for v in p) for p in f.landmarks68),
                    affine=tuple(tuple(float(v) for v in row) for row in m),
                    det_score=f.score,
                    sharpness=0.0,
                    descriptor=None if enc is None else tuple(float(v) for v in enc.descriptor(fr.rgb, f.landmarks68)),
                )
            )
    src = SourceRecord(path=str(video), sha256="0" * 64, kind="video", frames=reader.frame_count, fps=reader.fps, width=reader.width, height=reader.height)
    save_faceset(Faceset(id=f"test-{video.stem}", sources=(src,), faces=tuple(recs)), out)
    return out


def extract_or_build(video: Path, out: Path) -> Path:
    """A faceset made by the real extract stage (10 faces, every 8th frame) when it is installed."""
    try:
        from facedub.extract import ExtractConfig, extract_faceset
    except ImportError:
        return build_faceset(video, out)
    extract_faceset([video], out, ExtractConfig(every=8, max_frames=10))
    return out


@pytest.fixture(scope="session")
def eval_media(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """60-frame clips of both synthetic identities, a shuffled clip, and facesets of aiface2 / aiface1.

    The aiface2 faceset comes from a different clip (english) than the aiface2 "output" clip
    (intro), so identity is matched across clips, not frame by frame.
    """
    root = tmp_path_factory.mktemp("evalmedia")
    syn = shared_data / "synthetic"
    a1 = read_frames(syn / "aiface1" / "speech_512.mp4", CLIP_FRAMES)
    a2 = read_frames(syn / "aiface2" / "intro_512.mp4", CLIP_FRAMES)
    rng = np.random.default_rng(0)
    perm = rng.permutation(CLIP_FRAMES)
    write_clip(root / "a1.mp4", a1)
    media = {
        "a1": root / "a1.mp4",
        # a second generation at a lower quality, as if convert re-encoded an untouched video
        "a1_reencoded": write_clip(root / "a1_re.mp4", read_frames(root / "a1.mp4", CLIP_FRAMES), crf=23),
        "a1_shuffled": write_clip(root / "a1_shuf.mp4", [a1[i] for i in perm]),
        "a2": write_clip(root / "a2.mp4", a2),
        "fs_a2": extract_or_build(syn / "aiface2" / "english_512.mp4", root / "fs_a2"),
        "fs_a1": build_faceset(syn / "aiface1" / "speech_512.mp4", root / "fs_a1", descriptors=False, frames=200, every=25),
    }
    return media
