"""The issue's goal on a 2-worker local Ray cluster: a dataset of 4 pairs x 2 clips, and a
batch of two image-sequence conversions, each timed here (one process) and on the cluster.

    python bench/bench_batch.py                 # 25 frames a dataset clip, 48-frame shots
    python bench/bench_batch.py --frames 10 --no-write

The dataset is bench_dataset's (four pairs of synthetic identity labels, two shared clips each,
256² and 512² mixed) with an untrained quarter-width ``lite`` model under each pair's consent
records (the pipeline's cost, not a real model's). The batch is two conversion jobs on PNG
plate sequences made from shared clips, split into 16-frame ranges on the cluster. Both runs
must write the same masks / plates (checked); the figures are wall times on the shared 2-core
host, so the cluster cannot be faster than the cores it shares: this measures the overhead
of fanning out (Ray start, task shipping, the warm-up frames each range re-reads).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED_DATA, write_section  # noqa: E402
from bench.bench_dataset import PAIRS  # noqa: E402


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _model(folder: Path, source, target) -> None:
    import torch

    from facedub.model import build_model, default_config
    from facedub.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = default_config("lite", width=0.25)
    save_checkpoint(folder, build_model("lite", cfg), {"arch": "lite", "config": cfg.to_dict(), "step": 0, "target_descriptor": None,
                                                       "source_descriptor": None, "consent": {"source": source.to_dict(), "target": target.to_dict()}})


def _timed(fn):
    t = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t


def dataset_part(root: Path, frames: int) -> list[str]:
    from facedub.batch.cluster import connect
    from facedub.batch.dataset import build_dataset_on
    from facedub.dataset import build_dataset
    from facedub.safety.consent import create_consent, save_consent

    ids = sorted({x for s, tg, _ in PAIRS for x in (s, tg)})
    recs = {i: create_consent(f"synthetic {i}", "facedub bench", "bench", synthetic=True) for i in ids}
    lines = ["[dataset]", 'name = "bench"', f"frames = {frames}", ""]
    for i, r in recs.items():
        save_consent(r, root / f"{i}.json")
        lines += [f"[identities.{i}]", f'consent = "{i}.json"']
    for s, tg, clips in PAIRS:
        _model(root / f"m-{s}-{tg}", recs[s], recs[tg])
        paths = ", ".join(f'"{SHARED_DATA / "synthetic" / c}"' for c in clips)
        lines += ["", "[[pairs]]", f'source = "{s}"', f'target = "{tg}"', f'model = "m-{s}-{tg}"', f"clips = [{paths}]"]
    spec = root / "spec.toml"
    spec.write_text("\n".join(lines) + "\n")
    here, t_here = _timed(lambda: build_dataset(spec, root / "here"))

    def on_cluster():
        t = time.perf_counter()
        with connect("local:2") as ex:
            t_start = time.perf_counter() - t
            return build_dataset_on(ex, spec, root / "ray"), t_start

    (there, t_start), t_there = _timed(on_cluster)
    masks = {str(p.relative_to(root / "here")): _sha(p) for p in (root / "here").rglob("masks/*/*.png")}
    same = masks == {str(p.relative_to(root / "ray")): _sha(p) for p in (root / "ray").rglob("masks/*/*.png")}
    n = frames * (here.items + here.real)
    return [
        f"- Dataset, 4 pairs x 2 clips, {frames} frames a clip ({here.items} swapped + {here.real} real clips, {n} frames written): "
        f"one process {t_here:.1f} s ({n / t_here:.1f} frames/s); local Ray cluster of 2 workers {t_there:.1f} s ({n / t_there:.1f} frames/s), "
        f"of which {t_start:.1f} s starting Ray; {len(masks)} mask files, {'all byte-identical' if same else 'NOT identical'} between the two; "
        f"mask IoU min {here.mask_iou_min} here, {there.mask_iou_min} on the cluster",
    ]


def batch_part(root: Path, frames: int) -> list[str]:
    import numpy as np

    from facedub.batch.cluster import connect
    from facedub.batch.jobs import load_jobs
    from facedub.batch.runner import run_batch
    from facedub.media import sequence as seq
    from facedub.media.reader import open_media
    from facedub.safety.consent import create_consent, save_consent

    rec = {r: create_consent(f"synthetic {r}", "facedub bench", "bench", synthetic=True) for r in ("src", "tgt")}
    for r, c in rec.items():
        save_consent(c, root / f"{r}.json")
    _model(root / "m", rec["src"], rec["tgt"])
    for k, clip in enumerate(("aiface1/speech_256.mp4", "aiface2/english_256.mp4")):
        (root / f"plates{k}").mkdir()
        p = seq.parse_pattern(str(root / f"plates{k}" / "p.%04d.png"))
        for i, f in enumerate(open_media(SHARED_DATA / "synthetic" / clip).frames(limit=frames)):
            seq.write_frame(p.path(1001 + i), np.ascontiguousarray(f.rgb), "uint8")
    jobs = ['[defaults]', 'model = "m"', 'source_consent = "src.json"', 'target_consent = "tgt.json"', "chunk_frames = 16", ""]
    for k in range(2):
        jobs += ["[[jobs]]", f'name = "shot{k}"', f'target = "plates{k}/p.%04d.png"', f'out = "OUT/out{k}/s.%04d.png"', f'matte_out = "OUT/matte{k}/s.%04d.png"', ""]
    res = {}
    (root / "jobs.toml").write_text("\n".join(jobs).replace("OUT", "out"))
    jf = load_jobs(root / "jobs.toml")
    for where in ("here", "ray"):
        # the same output paths both times: a sequence's mark is derived from its paths and settings
        if where == "here":
            s, t = _timed(lambda: run_batch(jf, state_dir=root / "state-here"))
        else:
            def go():
                with connect("local:2") as ex:
                    return run_batch(jf, ex, state_dir=root / "state-ray")
            s, t = _timed(go)
        assert s.exit_code == 0, s.lines()
        res[where] = (t, {str(p.relative_to(root / "out")): _sha(p) for p in (root / "out").rglob("*.png")})
        (root / "out").rename(root / f"out-{where}")
    n = 2 * frames
    return [
        f"- Batch, 2 conversion jobs of {frames}-frame 256² PNG plate sequences (plate + matte): one process {res['here'][0]:.1f} s "
        f"({n / res['here'][0]:.1f} frames/s); local Ray cluster of 2 workers, 16-frame ranges as tasks, {res['ray'][0]:.1f} s "
        f"({n / res['ray'][0]:.1f} frames/s, Ray start included); written files byte-identical: "
        f"{'yes' if res['here'][1] == res['ray'][1] else 'NO'} ({len(res['here'][1])} files)",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=25, help="frames a dataset clip (default 25)")
    ap.add_argument("--shot-frames", type=int, default=48, help="frames of each batch shot (default 48)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    if not (SHARED_DATA / "synthetic").is_dir():
        print(f"shared media not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    import os

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as d:
        os.environ.setdefault("FACEDUB_HOME", str(Path(d) / "home"))  # signing key for the synthetic records (workers inherit it)
        root = Path(d)
        (root / "ds").mkdir()
        (root / "jobs").mkdir()
        out = dataset_part(root / "ds", args.frames) + batch_part(root / "jobs", args.shot_frames)
    out.append("- Ray 2.60.0, local:2 = ray.init(num_cpus=2, 96 MB object store); the 2 cores are shared with other work (wall times are upper bounds)")
    print("\n".join(out))
    if not args.no_write:
        write_section("batch", "Batch jobs and datasets on a 2-worker local Ray cluster", "\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
