"""Content gate. Benign shared media must pass; the refusal path uses a stand-in classifier
(no explicit media is used or added anywhere)."""

from pathlib import Path

import numpy as np
import pytest

from facedub.errors import BadInput, ContentRefused
from facedub.safety import content_gate as cg
from facedub.safety import policy


class StandIn:
    """Scores a frame as 'exposed' when its mean red channel is above 200 (a red card)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        red = float(np.mean(rgb[..., 0])) > 200 and float(np.mean(rgb[..., 1])) < 60
        return {"FEMALE_BREAST_EXPOSED": 0.93 if red else 0.01, "FACE_FEMALE": 0.8}


def _write(path: Path, n: int, red: set[int], fps: int = 10) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            img = np.full((48, 64, 3), 90, np.uint8)
            if i in red:
                img[...] = (240, 10, 10)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def _check_sampling(idx, n, fps):
    """First frame, then at most a second between samples, and (nearly) the last frame."""
    assert idx[0] == 0 and idx[-1] >= n - 4
    assert all(0 < b - a <= fps for a, b in zip(idx, idx[1:]))
    assert len(idx) >= int(n / fps) + 1


def test_sampling_covers_every_second_and_first_and_last(tmp_path):
    p = _write(tmp_path / "v.mp4", 35, set(), fps=10)  # 3.5 s
    idx = [i for _t, i, _ in cg.sample_video(p, 1.0)]
    _check_sampling(idx, 35, 10)
    assert len(idx) <= 6


def test_sampling_skips_unreferenced_frames_and_falls_back_on_long_gaps(tmp_path, monkeypatch):
    """Typical x264 output: B-frames are skipped, yet every second is sampled. Runs of 12
    unreferenced B-frames (longer than a second at 10 fps) make it decode in full."""
    import av

    def write(path, params):
        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            s.options = {"x264-params": params}
            texture = np.random.default_rng(0).integers(60, 200, (48, 128, 3), dtype=np.uint8)
            for i in range(60):
                img = np.ascontiguousarray(texture[:, i : i + 64])  # slow pan: B-frames pay off
                img[:8, :8] = i * 4  # the frame number, to check which frame a sample is
                for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(pk)
            for pk in s.encode(None):
                c.mux(pk)
        return path

    passes = []
    real = cg._sample_pass

    def spy(path, state, skip_nonref):
        gap = yield from real(path, state, skip_nonref)
        passes.append((skip_nonref, gap, state.frames))
        return gap

    monkeypatch.setattr(cg, "_sample_pass", spy)
    for params, expect in (
        ("bframes=3:b-adapt=0:b-pyramid=none:scenecut=0", [(True, False)]),  # 2 of 3 frames skipped, one pass
        ("bframes=12:b-adapt=0:b-pyramid=none:scenecut=0", [(True, True), (False, False)]),
    ):
        passes.clear()
        p = write(tmp_path / f"b{len(params)}.mp4", params)
        got = list(cg.sample_video(p, 1.0))
        assert [(a, b) for a, b, _ in passes] == expect
        if len(expect) == 1:
            assert passes[0][2] < 30  # frames looked at: the B-frames were never decoded
        idx = [i for _t, i, _ in got]
        _check_sampling(idx, 60, 10)
        for t, i, rgb in got:  # each sample is the frame it says it is
            assert abs(t * 10 - i) < 1e-6 and abs(int(rgb[2, 2, 0]) - i * 4) <= 3


def test_refusal_names_file_and_times(tmp_path):
    p = _write(tmp_path / "v.mp4", 60, set(range(20, 50)), fps=10)  # red from 2 s to 5 s
    with pytest.raises(ContentRefused) as e:
        policy.check_inputs([p], classifier=StandIn())
    msg = str(e.value)
    assert str(p) in msg and "0:02.00" in msg and "0:04.00" in msg and "female breast exposed" in msg
    assert "\n" not in msg


def test_single_flagged_image_is_refused(tmp_path):
    from PIL import Image

    red = np.zeros((40, 40, 3), np.uint8)
    red[..., 0] = 250
    Image.fromarray(red).save(tmp_path / "a.png")
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(ContentRefused, match="a.png"):
        policy.check_inputs([tmp_path], classifier=StandIn())  # a folder of images
    assert policy.check_inputs([tmp_path / "b.png"], classifier=StandIn())[0].refused is False
    with pytest.raises(ContentRefused, match="preview"):
        policy.check_image(red, "preview", classifier=StandIn())


def test_decision_rule():
    cfg = cg.GateConfig()

    def samples(flags):
        return [cg.Sample(float(i), i, 0.9 if f else 0.0, "X", f) for i, f in enumerate(flags)]

    assert not cg.decide(samples([False] * 100), cfg)
    assert not cg.decide(samples([True] + [False] * 99), cfg)  # one lone detector error in 100 s
    assert cg.decide(samples([True, True, True] + [False] * 197), cfg)  # a 3 s run
    assert cg.decide(samples(([True] + [False] * 9) * 10), cfg)  # 10 % of samples, scattered
    assert cg.decide(samples([True]), cfg)  # an image


def test_unreadable_input(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(BadInput, match="x.mp4"):
        policy.check_inputs([bad], classifier=StandIn())
    with pytest.raises(BadInput, match="no such file"):
        policy.check_inputs([tmp_path / "missing.mp4"], classifier=StandIn())


def test_nudenet_classifier_runs_offline():
    clf = cg.default_classifier()
    scores = clf(np.full((120, 90, 3), 128, np.uint8))
    assert set(cg.EXPOSED_CLASSES) <= set(scores)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert max(scores[k] for k in cg.EXPOSED_CLASSES) < cg.GateConfig().score_threshold


@pytest.mark.shared
@pytest.mark.slow
def test_every_shared_file_passes(shared_data, capsys):
    files = sorted(p for p in shared_data.rglob("*") if p.suffix.lower() in {".mp4", ".mpg", ".png", ".jpg"})
    assert len(files) >= 20
    reports = policy.check_inputs(files)  # raises ContentRefused on any refusal
    assert len(reports) == len(files)
    top = max(reports, key=lambda r: r.max_score)
    assert all(len(r.samples) >= 2 for r in reports if not cg.is_image_path(r.path))
    assert top.max_score < 0.5 * cg.GateConfig().score_threshold
    with capsys.disabled():
        print(f"\ncontent gate: {len(files)} shared files pass; highest exposed-class score {top.max_score:.4f} ({top.path})")


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_gate_sees_a_rotated_phone_video_upright(tmp_path, rotation):
    """A phone clip stored sideways with a rotation in its metadata: the classifier gets the
    frames as players (and extract/convert) show them, not the stored ones."""
    from tests.media import gen

    src = gen.write_video(tmp_path / "phone.mp4", frames=30, size=(64, 96), fps=10, rotation=rotation)
    seen: list[np.ndarray] = []

    def recording(rgb):
        seen.append(rgb.copy())
        return {"FEMALE_BREAST_EXPOSED": 0.01}

    report = cg.scan_file(src, recording)
    assert len(seen) == len(report.samples) >= 3
    for rgb in seen:
        assert rgb.shape == (96, 64, 3)  # shown size (width 64, height 96), not stored 96x64
        assert gen.markers(rgb) == "upright"


def test_gate_sees_a_mirrored_video_as_shown(tmp_path):
    from tests.media import gen

    src = gen.write_video(tmp_path / "mirror.mp4", frames=12, size=(64, 48), hflip=True)
    seen: list[np.ndarray] = []
    cg.scan_file(src, lambda rgb: seen.append(rgb.copy()) or {})
    from facedub.media.reader import open_media

    shown = [f.rgb for f in open_media(src)]
    assert seen and all(any(np.array_equal(s, f) for f in shown) for s in seen)


def test_one_gate_per_run_scans_each_identical_file_once(tmp_path, monkeypatch):
    """Inside one run the gate's passing verdict is reused only for the identical file; a
    file rewritten with other bytes (same size, same mtime) is scanned again; outside a run
    every call scans."""
    import os

    vid = _write(tmp_path / "v.mp4", 12, set())
    img = tmp_path / "i.bmp"  # uncompressed: rewritten with other pixels it keeps its size
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(img)
    scanned: list[str] = []
    real = cg.scan_file
    monkeypatch.setattr(cg, "scan_file", lambda p, *a, **k: scanned.append(Path(p).name) or real(p, *a, **k))
    monkeypatch.setattr(cg, "default_classifier", lambda: StandIn())

    with policy.one_gate_per_run():
        policy.check_inputs([vid, img])
        policy.check_inputs([vid])
        policy.check_inputs([str(vid)])
        reports = policy.check_inputs([img])
        assert sorted(scanned) == ["i.bmp", "v.mp4"] and reports[0].path == str(img)
        st = img.stat()
        Image.fromarray(np.full((32, 32, 3), 240, np.uint8)).save(img)  # other bytes ...
        os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... same mtime
        assert img.stat().st_size == st.st_size
        policy.check_inputs([img])
        assert scanned.count("i.bmp") == 2
    policy.check_inputs([vid])
    assert scanned.count("v.mp4") == 2  # outside a run: scanned every time


def test_one_gate_per_run_never_keeps_a_refusal(tmp_path, monkeypatch):
    red = _write(tmp_path / "red.mp4", 12, set(range(12)))
    monkeypatch.setattr(cg, "default_classifier", lambda: StandIn())
    calls = []
    real = cg.scan_file
    monkeypatch.setattr(cg, "scan_file", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
    with policy.one_gate_per_run():
        for _ in range(2):
            with pytest.raises(ContentRefused):
                policy.check_inputs([red])
    assert len(calls) == 2
