"""extract_faceset end to end (short clips; shared media where a face is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import write_test_video

from facedub.errors import BadInput, Cancelled
from facedub.extract import ExtractConfig, extract_faceset
from facedub.faces.align import CROP_SIZE, TEMPLATE5, transform_points
from facedub.faceset import load_faceset
from facedub.faceset.store import load_crop
from facedub.progress import RecordingReporter

AIFACE1 = ("synthetic", "aiface1", "speech_512.mp4")


def _assert_eyes_aligned(fs) -> None:  # noqa: ANN001
    """Eye centres in crop space sit near the template (the 5-point least-squares fit leaves a
    few px for faces shaped unlike the template) and barely move across the set."""
    eyes = []
    for f in fs.faces:
        lm = transform_points(f.landmarks_array(), f.affine_array())
        eyes.append([lm[36:42].mean(0), lm[42:48].mean(0)])
    eyes = np.array(eyes)
    err = np.linalg.norm(eyes - TEMPLATE5[:2] * CROP_SIZE, axis=2)
    assert err.max() < 8.0, err.max()
    assert eyes.std(axis=0).max() < 2.0, eyes.std(axis=0)


def test_video_without_faces_is_bad_input(tmp_path: Path) -> None:
    v = write_test_video(tmp_path / "noface.mp4", frames=8, size=(96, 64))
    with pytest.raises(BadInput, match="noface.mp4: no usable faces found"):
        extract_faceset([v], tmp_path / "fs", ExtractConfig())
    assert not (tmp_path / "fs" / "faceset.json").exists()


@pytest.mark.shared
def test_aiface1_clip_gives_aligned_faces_of_one_person(shared_data: Path, tmp_path: Path) -> None:
    rep = RecordingReporter()
    out = tmp_path / "fs"
    s = extract_faceset([shared_data.joinpath(*AIFACE1)], out, ExtractConfig(every=3, max_frames=120, descriptor_every=40), rep)
    assert s.frames_read == 120
    assert s.frames_with_face / s.frames_read >= 0.98
    assert s.faces_kept >= 0.98 * 120 and s.faces_total == s.faces_kept
    assert rep.phases and rep.done == 120 and rep.metrics["kept"] == s.faces_kept
    fs = load_faceset(out)
    assert len(fs.faces) == s.faces_kept and fs.id == s.faceset_id
    assert [f.frame for f in fs.faces][:3] == [0, 3, 6]
    f0 = fs.faces[0]
    assert len(f0.landmarks) == 68 and f0.pose is not None and f0.sharpness > 15 and f0.det_score > 0.5
    assert fs.sources[0].sha256 and fs.sources[0].kind == "video" and fs.sources[0].done_until == 357
    assert not fs.sources[0].complete  # stopped by max_frames: a later run finishes it
    # crops: on disk, 256² RGB, eyes on the template
    crop = load_crop(out, f0.file)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    _assert_eyes_aligned(fs)
    # one identity: descriptors close to their mean
    descs = np.array([f.descriptor for f in fs.faces if f.descriptor is not None])
    assert len(descs) >= 3
    assert np.linalg.norm(descs - descs.mean(0), axis=1).max() < 0.3
    assert s.identities == 1 and not s.notes

    # Resume: the same command goes on after frame 357; removed crops are never re-added.
    data = json.loads((out / "faceset.json").read_text())
    data["removed"] = [fs.faces[-1].file]
    data["faces"] = data["faces"][:-1]
    (out / "faceset.json").write_text(json.dumps(data))
    s2 = extract_faceset([shared_data.joinpath(*AIFACE1)], out, ExtractConfig(every=3, max_frames=10, descriptor_every=40))
    assert s2.frames_read == 10 and s2.faces_kept == 10
    fs2 = load_faceset(out)
    assert [f.frame for f in fs2.faces][-10:] == list(range(360, 390, 3))
    assert fs.faces[-1].file not in {f.file for f in fs2.faces}
    assert len({f.file for f in fs2.faces}) == len(fs2.faces)
    assert not (out / fs.faces[-1].file).exists()  # unreferenced crop cleaned up


@pytest.mark.shared
def test_grid_clip(shared_data: Path, tmp_path: Path) -> None:
    s = extract_faceset([shared_data / "grid" / "pwij3p.mpg"], tmp_path / "fs", ExtractConfig())
    fs = load_faceset(tmp_path / "fs")
    assert s.frames_read == 75 and s.frames_with_face / s.frames_read >= 0.98
    assert fs.sources[0].complete and fs.sources[0].frames == 75
    _assert_eyes_aligned(fs)
    descs = np.array([f.descriptor for f in fs.faces if f.descriptor is not None])
    assert np.linalg.norm(descs - descs.mean(0), axis=1).max() < 0.3
    # a second run finds everything done
    s2 = extract_faceset([shared_data / "grid" / "pwij3p.mpg"], tmp_path / "fs", ExtractConfig())
    assert s2.sources_skipped == 1 and s2.frames_read == 0 and s2.faces_total == len(fs.faces)


@pytest.mark.shared
def test_two_people_keep_the_larger_or_the_reference(shared_data: Path, tmp_path: Path) -> None:
    a = shared_data / "grid" / "pwij3p.mpg"
    b = shared_data / "grid" / "bbaf2n.mpg"  # another speaker
    cfg = ExtractConfig(every=2, max_frames=20)
    rep = RecordingReporter()
    s = extract_faceset([a, b], tmp_path / "auto", cfg, rep)
    # equal counts: the first group wins ties; there must be a note and rejections
    assert s.identities == 2 and s.rejected.get("other_person") == 20
    assert any("2 different people" in n for n in rep.notes)
    fs = load_faceset(tmp_path / "auto")
    assert {f.source for f in fs.faces} == {0} and len(fs.faces) == 20
    assert len(list((tmp_path / "auto" / "faces").glob("*.png"))) == 20  # dropped crops deleted

    # --reference picks the other speaker, from a still of them
    from PIL import Image

    from facedub.media.reader import open_media

    still = next(iter(open_media(b).frames(start=40, limit=1))).rgb
    Image.fromarray(still).save(tmp_path / "ref.png")
    s = extract_faceset([a, b], tmp_path / "ref", ExtractConfig(every=2, max_frames=20, reference=str(tmp_path / "ref.png")))
    fs = load_faceset(tmp_path / "ref")
    assert {f.source for f in fs.faces} == {1} and s.rejected.get("other_person") == 20
    assert fs.settings["reference_sha256"]


@pytest.mark.shared
def test_cancel_leaves_a_valid_faceset(shared_data: Path, tmp_path: Path) -> None:
    class StopAfter(RecordingReporter):
        def should_stop(self) -> bool:  # stop 15 frames into extraction (after the content check)
            return self.phases[-1][0].startswith("extract") and self.done >= 15

    with pytest.raises(Cancelled):
        extract_faceset([shared_data.joinpath(*AIFACE1)], tmp_path / "fs", ExtractConfig(every=2), StopAfter())
    fs = load_faceset(tmp_path / "fs")
    assert len(fs.faces) == 15 and fs.sources[0].done_until == 28 and not fs.sources[0].complete
    for f in fs.faces:
        assert (tmp_path / "fs" / f.file).is_file()


@pytest.mark.shared
def test_images_and_folders(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    from PIL import Image

    Image.open(shared_data / "portraits" / "aiface7.png").save(folder / "a.png")  # RGBA
    Image.open(shared_data / "portraits" / "aiface8.png").save(folder / "b.png")  # RGBA
    s = extract_faceset([folder], tmp_path / "fs", ExtractConfig(match_distance=0.5))
    fs = load_faceset(tmp_path / "fs")
    assert s.sources == 2 and all(src.kind == "image" for src in fs.sources)
    assert 1 <= len(fs.faces) <= 2  # aiface7/8 are two people: one is kept, or both if alike
    assert all(f.descriptor is not None for f in fs.faces)  # every still gets a descriptor


@pytest.mark.shared
def test_checkpoints_never_name_missing_crops_and_ctrl_c_is_safe(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "fs"
    seen: list[int] = []

    class Watcher(RecordingReporter):
        def advance(self, n: int = 1, **metrics: object) -> None:
            super().advance(n, **metrics)
            js = out / "faceset.json"
            if js.exists():
                fs = load_faceset(out)  # always parses: written atomically
                assert all((out / f.file).is_file() for f in fs.faces)  # crops before the json
                seen.append(len(fs.faces))
            if self.phases[-1][0].startswith("extract") and self.done == 12:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_faceset([shared_data.joinpath(*AIFACE1)], out, ExtractConfig(every=4, checkpoint_seconds=0.0), Watcher())
    assert seen and seen == sorted(seen) and max(seen) >= 8  # checkpoints happened as it went
    fs = load_faceset(out)
    assert len(fs.faces) == 12 and fs.sources[0].done_until == 44 and not fs.sources[0].complete
    # resume from there
    s = extract_faceset([shared_data.joinpath(*AIFACE1)], out, ExtractConfig(every=4, max_frames=3))
    assert [f.frame for f in load_faceset(out).faces][-3:] == [48, 52, 56] and s.faces_total == 15


def test_crops_are_lossless_png_at_every_compression_level(tmp_path: Path) -> None:
    """The fixed row filters of the fast levels (see _png_params) change the file, never the pixels."""
    from facedub.extract.pipeline import _write_crop

    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    crop[:128] = np.linspace(0, 255, CROP_SIZE, dtype=np.uint8)[None, :, None]  # smooth half: filters matter
    sizes = {}
    for level in (0, 1, 9):
        path = tmp_path / f"c{level}.png"
        _write_crop(path, crop, level)
        assert np.array_equal(load_crop(tmp_path, path.name), crop), level
        sizes[level] = path.stat().st_size
    assert sizes[0] > CROP_SIZE * CROP_SIZE * 3  # level 0: stored
    assert sizes[1] < sizes[0]


@pytest.mark.parametrize("shape", [(512, 512), (300, 420), (1080, 1920)])
def test_crop_warp_through_rgba_is_the_plain_warp(shape: tuple[int, int]) -> None:
    import cv2

    from facedub.extract.pipeline import _warp_to_crop
    from facedub.faces.align import warp

    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), (0, 0), 2)
    for m in ([[0.58, 0.05, -20.0], [-0.05, 0.58, -40.0]], [[0.9, 0.3, -150.0], [-0.3, 0.9, 30.0]]):  # the second runs off the frame
        m = np.array(m)
        assert np.array_equal(_warp_to_crop(img, m), warp(img, m, CROP_SIZE))
