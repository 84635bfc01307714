"""End to end on shared clips with the convert tests' tiny model and the real face detector:
layout, labels, splits, masks against the pixels that changed, the pristine mark, resuming."""

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from facedub.cli import main
from facedub.dataset import build as build_mod
from facedub.dataset import build_dataset
from facedub.dataset import masks as mm
from facedub.fileio import write_json
from facedub.model.checkpoint import read_meta
from facedub.safety.consent import create_consent, save_consent
from facedub.safety.verify import verify_file

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).parents[1] / "convert" / "tinymodel.py")
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "train_tiny_model"):
    _spec.loader.exec_module(helpers)

pytestmark = [pytest.mark.shared, pytest.mark.slow]
FRAMES = 12
CLIPS = {"b": ("synthetic", "aiface1", "speech_256.mp4"), "d": ("synthetic", "aiface2", "english_256.mp4")}


def _model_for(base: Path, folder: Path, source_rec, target_rec) -> None:
    """A copy of the tiny model trained under the given consent records (same weights)."""
    shutil.copytree(base, folder)
    meta = read_meta(folder)
    meta["consent"] = {"source": source_rec.to_dict(), "target": target_rec.to_dict()}
    write_json(folder / "model.json", meta)


@pytest.fixture(scope="module")
def workdir(shared_data, tmp_path_factory):
    """Consent records of four synthetic identities, two models (a→b, c→d) and the spec."""
    root = tmp_path_factory.mktemp("dataset")
    base = helpers.train_tiny_model(root / "tiny", shared_data.joinpath(*CLIPS["b"]), steps=30)
    recs = {}
    for ident in "abcd":
        recs[ident] = create_consent(f"synthetic {ident}", "facedub tests", "dataset tests", synthetic=True)
        save_consent(recs[ident], root / f"{ident}.json")
    _model_for(base, root / "m-ab", recs["a"], recs["b"])
    _model_for(base, root / "m-cd", recs["c"], recs["d"])
    ids = "\n".join(f'[identities.{i}]\nconsent = "{i}.json"' for i in "abcd")
    (root / "spec.toml").write_text(f"""
[dataset]
name = "test"
seed = 1
frames = {FRAMES}
splits = [0.5, 0.0, 0.5]

[convert]
crf = 20

{ids}

[[pairs]]
source = "a"
target = "b"
model = "m-ab"
clips = ["{shared_data.joinpath(*CLIPS['b'])}"]

[[pairs]]
source = "c"
target = "d"
model = "m-cd"
clips = ["{shared_data.joinpath(*CLIPS['d'])}"]
""")
    return root, recs


@pytest.fixture(scope="module")
def built(workdir):
    """The dataset, and per swapped clip the pixels that changed in each frame before encoding
    (the convert pipeline's input vs its composite, seen through the same hook)."""
    root, recs = workdir
    import facedub.convert.pipeline as pipeline

    changed: dict[str, dict[int, np.ndarray]] = {}
    real = pipeline.convert_video

    def recording(target, model, out, config=None, reporter=None, *, on_paste=None, **kw):
        frames = changed.setdefault(Path(out).name, {})

        def hook(r):
            frames[r.index] = mm.changed_pixels(r.plate, r.composite)
            on_paste(r)

        return real(target, model, out, config, reporter, on_paste=hook, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "convert_video", recording)
        summary = build_dataset(root / "spec.toml", root / "out")
    return root / "out", summary, changed, recs


def test_layout_labels_and_splits(built):
    out, s, _, recs = built
    assert s.items == 2 and s.real == 2 and s.built == 2
    assert not build_mod.staging_folder(out).exists()
    assert not (out / "state").exists() and not (out / "plan.json").exists()
    for clip, src in (("b-speech-256", "a"), ("d-english-256", "c")):
        real = out / "original_sequences" / "facedub" / "c20" / "videos" / f"{clip}.mp4"
        swap = out / "manipulated_sequences" / "facedub-lite" / "c20" / "videos" / f"{clip}_{src}.mp4"
        assert real.is_file() and swap.is_file()
        assert Path(str(real) + ".facedub.json").is_file() and Path(str(swap) + ".facedub.json").is_file()
        lab = json.loads((out / "labels" / "manipulated" / "facedub-lite" / f"{clip}_{src}.json").read_text())
        tgt = clip[0]
        assert lab["label"] == "fake" and lab["method"] == "facedub-lite" and lab["architecture"] == "lite"
        assert lab["source_identity"] == src and lab["target_identity"] == tgt
        assert lab["consent_ids"] == {"source": recs[src].id, "target": recs[tgt].id}
        assert lab["seeds"]["dataset"] == 1 and lab["settings"]["crf"] == 20 and lab["settings"]["visible_label"] is False
        assert lab["frames"] == FRAMES and lab["mask_frames"] == FRAMES
        assert (out / lab["video"]) == swap and (out / lab["original"]) == real
        rl = json.loads((out / "labels" / "original" / f"{clip}.json").read_text())
        assert rl["label"] == "real" and rl["identity"] == tgt and rl["consent_ids"] == {"identity": recs[tgt].id}
    splits = {n: json.loads((out / "splits" / f"{n}.json").read_text()) for n in ("train", "val", "test")}
    seen = [i for d in splits.values() for i in d["identities"]]
    assert sorted(seen) == ["a", "b", "c", "d"]  # every identity once: none in two splits
    assert splits["val"]["identities"] == []
    for d in splits.values():
        for clip, src in d["pairs"]:
            assert src in d["identities"] and clip[0] in d["identities"]
    ds = json.loads((out / "dataset.json").read_text())
    assert ds["type"] == "facedub.dataset" and len(ds["items"]) == 2


def test_masks_match_the_pixels_that_changed(built):
    out, s, changed, _ = built
    ious = []
    for name, frames in changed.items():
        key = name[: -len(".mp4")]
        folder = out / "manipulated_sequences" / "facedub-lite" / "masks" / key
        assert sorted(p.name for p in folder.iterdir()) == [f"{i:05d}.png" for i in range(FRAMES)]
        assert sorted(frames) == list(range(FRAMES))
        for i, diff in frames.items():
            m = mm.read_png(folder / f"{i:05d}.png")
            assert m.shape == diff.shape
            assert np.count_nonzero(diff & (m == 0)) <= 0.0001 * diff.size  # nothing changes outside the mask
            ious.append(mm.iou(m >= mm.MASK_LEVEL, diff))
    assert len(ious) == 2 * FRAMES
    assert min(ious) >= 0.95, f"IoU per frame: min {min(ious):.4f}, mean {np.mean(ious):.4f}"
    assert s.mask_iou_min is not None and abs(s.mask_iou_min - min(ious)) < 1e-3  # the build's own check agrees


def _x264_options(path: Path) -> str:
    m = re.search(rb"options: ([^\x00]+)", path.read_bytes())
    assert m, f"{path}: no x264 settings found"
    return m.group(1).decode()


def test_real_and_swapped_clips_are_encoded_alike_and_verify_tells_them_apart(built, capsys):
    out, _, _, _ = built
    real = out / "original_sequences" / "facedub" / "c20" / "videos" / "b-speech-256.mp4"
    swap = out / "manipulated_sequences" / "facedub-lite" / "c20" / "videos" / "b-speech-256_a.mp4"
    props = []
    for p in (real, swap):
        with av.open(str(p)) as c:
            v = c.streams.video[0]
            props.append((v.codec_context.name, v.codec_context.pix_fmt, v.width, v.height, v.average_rate, v.frames, bool(c.streams.audio)))
    assert props[0] == props[1] and props[0][5] == FRAMES
    opts = _x264_options(real)
    assert opts == _x264_options(swap) and "crf=20.0" in opts
    r, w = verify_file(real), verify_file(swap)
    assert r.marked and r.pristine and r.watermark.found and r.watermark.pristine
    assert r.manifest.found and r.manifest.manifest["ai_generated"] is False and not r.c2pa.present
    assert w.marked and not w.pristine and w.watermark.found and not w.watermark.pristine and w.c2pa.ai_generated
    assert main(["verify", str(real)]) == 0
    assert "pristine facedub dataset clip" in capsys.readouterr().out.splitlines()[0]


def test_a_swap_is_refused_as_a_real_clip(built, workdir, tmp_path, capsys):
    out, _, _, _ = built
    root, _ = workdir
    swap = out / "manipulated_sequences" / "facedub-lite" / "c20" / "videos" / "b-speech-256_a.mp4"
    spec = (root / "spec.toml").read_text().replace(str(Path(*CLIPS["b"])), "X")
    spec = re.sub(r'clips = \["[^"]*X"\]', f'clips = ["{swap}"]', spec, count=1)
    (root / "spec-swap.toml").write_text(spec)
    assert main(["dataset", str(root / "spec-swap.toml"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(swap) in err[0] and "swap's watermark" in err[0]
    assert not (tmp_path / "ds").exists() and not build_mod.staging_folder(tmp_path / "ds").exists()


def test_an_interrupted_build_resumes_after_the_last_finished_item(workdir, tmp_path, monkeypatch, capsys):
    root, _ = workdir
    out = tmp_path / "ds"
    real_write = build_mod.write_real

    def failing(plan, item, path, marks):
        if item.target == "d":
            raise KeyboardInterrupt
        return real_write(plan, item, path, marks)

    monkeypatch.setattr(build_mod, "write_real", failing)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(root / "spec.toml", out)
    staging = build_mod.staging_folder(out)
    assert not out.exists() and staging.is_dir()
    assert sorted(p.name for p in (staging / "state").iterdir()) == ["b-speech-256_a.json"]
    monkeypatch.setattr(build_mod, "write_real", real_write)
    capsys.readouterr()
    assert main(["--quiet", "dataset", str(root / "spec.toml"), "--out", str(out), "--json"]) == 0  # the command line resumes too
    s = json.loads(capsys.readouterr().out)
    assert s["built"] == 1 and s["items"] == 2 and out.is_dir() and not staging.exists()
    assert s["mask_iou_min"] >= 0.95
    assert (out / "original_sequences" / "facedub" / "c20" / "videos" / "d-english-256.mp4").is_file()
