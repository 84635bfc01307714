"""facedub batch: the job file, per-job state, failures that leave the other jobs running,
and (when Ray is installed) a 2-worker local Ray cluster giving the same files as one machine."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facedub.batch.jobs import Job, JobError, load_jobs
from facedub.cli import main
from facedub.errors import BadInput
from facedub.safety.consent import create_consent, save_consent

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'facedub[cluster]'); the cluster tests need it")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _consents(folder: Path) -> None:
    for who in ("src", "tgt"):
        save_consent(create_consent(f"synthetic {who}", "facedub tests", "batch tests", synthetic=True), folder / f"{who}.json")


def _model(folder: Path, source=None, target=None) -> Path:
    """An untrained lite model at a quarter width (a known, fixed network) with valid consent
    (``source``/``target``: the records it was trained under; new synthetic ones by default)."""
    import torch

    from facedub.model import build_model, default_config
    from facedub.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = default_config("lite", width=0.25)
    meta = {"arch": "lite", "config": cfg.to_dict(), "step": 0, "target_descriptor": None, "source_descriptor": None,
            "consent": {r: (rec or create_consent(f"test {r}", "facedub tests", "batch tests", synthetic=True)).to_dict()
                        for r, rec in (("source", source), ("target", target))}}
    save_checkpoint(folder, build_model("lite", cfg), meta)
    return folder


def _plates(clip: Path, folder: Path, n: int) -> str:
    """The first ``n`` frames of ``clip`` as an 8-bit PNG sequence numbered from 1001."""
    from facedub.media import sequence as seq
    from facedub.media.reader import open_media

    folder.mkdir(parents=True)
    p = seq.parse_pattern(str(folder / "plate.%04d.png"))
    for k, f in enumerate(open_media(clip).frames(limit=n)):
        seq.write_frame(p.path(1001 + k), np.ascontiguousarray(f.rgb), "uint8")
    return p.text


# ---------------------------------------------------------------------------------------
# The job file
# ---------------------------------------------------------------------------------------
def test_job_file_takes_swap_settings_and_checks_each_job(tmp_path):
    _consents(tmp_path)
    _model(tmp_path / "m")
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("""
[defaults]
source_consent = "src.json"
target_consent = "tgt.json"
[defaults.convert]
crf = 23

[[jobs]]
name = "good"
source = "a.mp4"
target = "b.mp4"
out = "out/b.mp4"
minutes = 2.5
[jobs.convert]
mask = "hull"

[[jobs]]
name = "no-consent"
model = "m"
target = "b.mp4"
out = "out/c.mp4"
target_consent = "missing.json"

[[jobs]]
name = "typo"
target = "b.mp4"
out = "o.mp4"
source = "a.mp4"
minuets = 3

[[jobs]]
name = "bad-value"
target = "b.mp4"
out = "o.mp4"
source = "a.mp4"
[jobs.convert]
crf = 99
""")
    jf = load_jobs(jobs)
    good, missing, typo, bad = jf.jobs
    assert isinstance(good, Job) and good.swap.minutes == 2.5 and good.swap.source == (str(tmp_path / "a.mp4"),)
    assert good.swap.convert.crf == 23 and good.swap.convert.mask == "hull"  # defaults merged with the job's own table
    from facedub.swap import SwapConfig

    assert good.swap.every == SwapConfig(source=("x",), target="y", out="z").every  # unset keys: SwapConfig's defaults
    assert isinstance(missing, JobError) and missing.exit_code == 2
    assert str(jobs) in missing.message and "missing.json: no such consent record" in missing.message
    assert isinstance(typo, JobError) and "unknown key(s) minuets" in typo.message
    assert isinstance(bad, JobError) and "crf must be between 0 and 51" in bad.message


@pytest.mark.parametrize("text, problem", [
    ("[[jobs]\nname = 1", "not a valid TOML job file"),
    ("[defaults]\nminutes = 3\n", "no jobs"),
    ("[[jobs]]\nname = 'a b'\n", "name must be letters"),
    ("[[jobs]]\nname = 'a'\n[[jobs]]\nname = 'a'\n", "two jobs are named 'a'"),
    ("[[job]]\nname = 'a'\n", "unknown top-level key(s) job"),
])
def test_a_bad_job_file_is_one_line_and_exit_2(tmp_path, capsys, text, problem):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(text)
    with pytest.raises(BadInput, match="jobs.toml"):
        load_jobs(jobs)
    assert main(["--quiet", "batch", str(jobs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(jobs) in err[0] and problem in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.toml"]  # nothing written, no state folder


def test_cluster_needs_ray(monkeypatch):
    import sys

    from facedub.batch.cluster import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(BadInput, match=r"--cluster needs Ray, which is not installed; pip install 'facedub\[cluster\]'"):
        with connect("local:2"):
            pass


@needs_ray
def test_a_local_cluster_needs_a_worker_count():
    from facedub.batch.cluster import connect

    with pytest.raises(BadInput, match="--cluster local:zero: write local:N with N workers"):
        with connect("local:zero"):
            pass


# ---------------------------------------------------------------------------------------
# Runs (shared clip, real detector, an untrained tiny model)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def two_jobs(shared_data, tmp_path):
    """Two conversion jobs on 24-frame PNG plate sequences (one with a matte), in 8-frame
    chunks on a cluster, and a third that names a missing consent record."""
    _consents(tmp_path)
    _model(tmp_path / "m")
    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    _plates(clip, tmp_path / "plates1", 24)
    _plates(shared_data / "synthetic" / "aiface2" / "english_256.mp4", tmp_path / "plates2", 20)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text("""
[defaults]
model = "m"
source_consent = "src.json"
target_consent = "tgt.json"
chunk_frames = 8
visible_label = false
[defaults.convert]
precision = "fp32"
batch = 4

[[jobs]]
name = "shot1"
target = "plates1/plate.%04d.png"
out = "out1/shot.%04d.png"
matte_out = "matte1/shot.%04d.png"

[[jobs]]
name = "unconsented"
target = "plates1/plate.%04d.png"
out = "out3/shot.%04d.png"
source_consent = "nobody.json"

[[jobs]]
name = "shot2"
target = "plates2/plate.%04d.png"
out = "out2/shot.%04d.png"
""")
    return jobs


def _outputs(root: Path) -> dict[str, str]:
    return {f"{d}/{f.name}": _sha(f) for d in ("out1", "matte1", "out2") for f in sorted((root / d).glob("shot.*.png"))}


def _clear(root: Path) -> None:
    for d in ("out1", "matte1", "out2", "jobs.state"):
        shutil.rmtree(root / d, ignore_errors=True)


def test_batch_runs_the_others_when_one_job_fails_and_resumes(two_jobs, tmp_path, capsys):
    root = tmp_path
    assert main(["--quiet", "batch", str(two_jobs), "--json"]) == 2
    s = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in s["results"]}
    assert by["shot1"]["status"] == "done" and by["shot2"]["status"] == "done"
    assert by["unconsented"]["status"] == "failed" and by["unconsented"]["exit_code"] == 2
    assert "nobody.json: no such consent record" in by["unconsented"]["error"] and str(two_jobs) in by["unconsented"]["error"]
    assert not (root / "out3").exists()  # nothing of the failed job written
    st = json.loads((root / "jobs.state" / "unconsented.json").read_text())
    assert st["status"] == "failed" and st["exit_code"] == 2 and "nobody.json" in st["error"]
    st1 = json.loads((root / "jobs.state" / "shot1.json").read_text())
    assert st1["status"] == "done" and st1["stages"]["convert"]["done"] and st1["stages"]["verify"]["watermark"]
    files = _outputs(root)
    assert len(files) == 24 + 24 + 20
    # a rerun skips the finished jobs (their files untouched) and retries the failed one
    stamp = (root / "out1" / "shot.1001.png").stat().st_mtime_ns
    assert main(["--quiet", "batch", str(two_jobs), "--json"]) == 2
    s2 = json.loads(capsys.readouterr().out)
    assert [r["skipped"] for r in s2["results"] if r["status"] == "done"] == [["job"], ["job"]]
    assert (root / "out1" / "shot.1001.png").stat().st_mtime_ns == stamp and _outputs(root) == files


@needs_ray
def test_a_two_worker_ray_cluster_writes_the_same_files_as_one_machine(two_jobs, tmp_path, capsys):
    """The same two jobs on this machine (each shot in one conversion), then on a local Ray
    cluster of 2 workers (each shot in 8-frame ranges as separate tasks): every written
    plate and matte file is byte-identical."""
    assert main(["--quiet", "batch", str(two_jobs)]) == 2
    capsys.readouterr()
    one_machine = _outputs(tmp_path)
    assert len(one_machine) == 68
    _clear(tmp_path)
    assert main(["--quiet", "batch", str(two_jobs), "--cluster", "local:2", "--json"]) == 2
    s = json.loads(capsys.readouterr().out)
    assert s["where"] == "a local Ray instance with 2 workers"
    assert {r["name"]: r["status"] for r in s["results"]} == {"shot1": "done", "unconsented": "failed", "shot2": "done"}
    st = json.loads((tmp_path / "jobs.state" / "shot1.json").read_text())
    assert sorted(st["stages"]["convert"]["chunks"]) == [[1001, 1008], [1009, 1016], [1017, 1024]]
    assert _outputs(tmp_path) == one_machine


@needs_ray
def test_a_video_into_a_sequence_fans_out_by_frame_range_and_equals_one_machine(shared_data, tmp_path, capsys):
    """A video target whose output is an image sequence: on this machine one conversion, on
    a 2-worker local Ray cluster three frame-range tasks (frames 0-7, 8-15, 16-23 by index, of
    the first 24 given by max_frames); every plate and matte file is byte-identical, and the
    verify stage reads the first written frame."""
    _consents(tmp_path)
    _model(tmp_path / "m")
    jobs = tmp_path / "jobs.toml"
    clip = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    jobs.write_text(f"""
[[jobs]]
name = "take"
model = "m"
source_consent = "src.json"
target_consent = "tgt.json"
target = "{clip}"
out = "out1/shot.%04d.png"
matte_out = "matte1/shot.%04d.png"
max_frames = 24
chunk_frames = 8
visible_label = false
[jobs.convert]
precision = "fp32"
batch = 4
""")

    def outputs():
        return {f"{d}/{f.name}": _sha(f) for d in ("out1", "matte1") for f in sorted((tmp_path / d).glob("shot.*.png"))}

    assert main(["--quiet", "batch", str(jobs), "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert here["results"][0]["status"] == "done"
    one_machine = outputs()
    assert len(one_machine) == 48 and "out1/shot.0000.png" in one_machine and "matte1/shot.0023.png" in one_machine
    st = json.loads((tmp_path / "jobs.state" / "take.json").read_text())
    assert st["stages"]["convert"]["chunks"] == [] and st["stages"]["verify"]["file"].endswith("shot.0000.png")
    _clear(tmp_path)
    assert main(["--quiet", "batch", str(jobs), "--cluster", "local:2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["where"] == "a local Ray instance with 2 workers" and s["results"][0]["status"] == "done"
    st = json.loads((tmp_path / "jobs.state" / "take.json").read_text())
    assert sorted(st["stages"]["convert"]["chunks"]) == [[0, 7], [8, 15], [16, 23]]
    assert st["stages"]["verify"]["watermark"]
    assert outputs() == one_machine


# ---------------------------------------------------------------------------------------
# facedub dataset --cluster
# ---------------------------------------------------------------------------------------
@needs_ray
@pytest.mark.slow
def test_dataset_on_a_two_worker_cluster_equals_one_machine(shared_data, tmp_path, capsys):
    """2 pairs x 2 clips (6 frames each) built here and on a 2-worker local Ray cluster: the
    same items, masks byte-identical, labels equal but for the output ids (random per output)."""
    recs = {i: create_consent(f"synthetic {i}", "facedub tests", "dataset tests", synthetic=True) for i in ("a", "b", "c")}
    for i, r in recs.items():
        save_consent(r, tmp_path / f"{i}.json")
    _model(tmp_path / "m-ab", recs["a"], recs["b"])
    _model(tmp_path / "m-cb", recs["c"], recs["b"])
    c1 = shared_data / "synthetic" / "aiface1" / "speech_256.mp4"
    c2 = shared_data / "synthetic" / "aiface1" / "speech_512.mp4"
    spec = tmp_path / "spec.toml"
    spec.write_text(f"""
[dataset]
frames = 6
[convert]
precision = "fp32"
[identities.a]
consent = "a.json"
[identities.b]
consent = "b.json"
[identities.c]
consent = "c.json"
[[pairs]]
source = "a"
target = "b"
model = "m-ab"
clips = ["{c1}", "{c2}"]
[[pairs]]
source = "c"
target = "b"
model = "m-cb"
clips = ["{c1}", "{c2}"]
""")
    assert main(["--quiet", "dataset", str(spec), "--out", str(tmp_path / "here"), "--json"]) == 0
    here = json.loads(capsys.readouterr().out)
    assert main(["--quiet", "dataset", str(spec), "--out", str(tmp_path / "ray"), "--cluster", "local:2", "--json"]) == 0
    there = json.loads(capsys.readouterr().out)
    assert (here["items"], here["real"]) == (there["items"], there["real"]) == (4, 2)
    assert here["mask_iou_min"] == there["mask_iou_min"] and here["splits"] == there["splits"]

    def tree(root: Path, pattern: str) -> dict[str, Path]:
        return {str(p.relative_to(root)): p for p in sorted(root.rglob(pattern))}

    m1, m2 = tree(tmp_path / "here", "masks/*/*.png"), tree(tmp_path / "ray", "masks/*/*.png")
    assert len(m1) >= 4 * 5 and m1.keys() == m2.keys()
    assert all(_sha(m1[k]) == _sha(m2[k]) for k in m1)
    l1, l2 = tree(tmp_path / "here", "labels/**/*.json"), tree(tmp_path / "ray", "labels/**/*.json")
    assert len(l1) == 6 and l1.keys() == l2.keys()
    for k in l1:
        a, b = (json.loads(p.read_text()) for p in (l1[k], l2[k]))
        a.pop("output_id"), b.pop("output_id")
        assert a == b
    v1, v2 = tree(tmp_path / "here", "*.mp4"), tree(tmp_path / "ray", "*.mp4")
    assert len(v1) == 6 and v1.keys() == v2.keys()


# ---------------------------------------------------------------------------------------
# A whole swap as a job: extract both, train, convert, verify
# ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("cluster", [None, pytest.param("local:2", marks=needs_ray)], ids=["here", "ray"])
def test_a_swap_job_runs_every_stage_and_a_rerun_skips_the_finished_ones(shared_data, tmp_path, capsys, cluster):
    """Extraction (two tasks), a 2-step lite training (one task) and the conversion of 24
    frames; then, with the output deleted, a rerun redoes only the conversion and verification."""
    _consents(tmp_path)
    (tmp_path / "out").mkdir()  # as for 'facedub swap', OUT's folder must exist
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f"""
[[jobs]]
name = "swap1"
source = "{shared_data / 'synthetic' / 'aiface2' / 'english_256.mp4'}"
target = "{shared_data / 'synthetic' / 'aiface1' / 'speech_256.mp4'}"
out = "out/swap1.mp4"
source_consent = "src.json"
target_consent = "tgt.json"
arch = "lite"
steps = 2
max_frames = 24
evaluate = false
""")
    argv = ["--quiet", "batch", str(jobs), "--json"] + (["--cluster", cluster] if cluster else [])
    assert main(argv) == 0, capsys.readouterr().err
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert r["status"] == "done" and r["skipped"] == []
    st = json.loads((tmp_path / "jobs.state" / "swap1.json").read_text())
    assert set(st["stages"]) == {"extract-source", "extract-target", "train", "convert", "verify"}
    assert st["stages"]["train"]["step"] == 2 and st["stages"]["verify"]["watermark"]
    assert (tmp_path / "out" / "swap1.mp4").is_file() and (tmp_path / "out" / "swap1.facedub" / "model" / "model.json").is_file()
    # an interrupted job: its output gone, its state not done
    (tmp_path / "out" / "swap1.mp4").unlink()
    st["status"] = "running"
    (tmp_path / "jobs.state" / "swap1.json").write_text(json.dumps(st))
    assert main(argv) == 0, capsys.readouterr().err
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert r["status"] == "done" and sorted(r["skipped"]) == ["extract-source", "extract-target", "train"]
    assert (tmp_path / "out" / "swap1.mp4").is_file()
