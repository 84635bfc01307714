"""How long a small detection dataset takes to build here, and how well its masks match.

    python bench/bench_dataset.py              # 4 pairs x 2 clips, 25 frames a clip
    python bench/bench_dataset.py --frames 50

Four pairs of synthetic identity labels with two clips each from ``../shared/data/synthetic``
(the fourth pair swaps another source into the first pair's target clips, as
FaceForensics++ pairs one target with several sources): 8 swapped clips, 6 real ones. The
model is the convert tests' tiny one (a quarter-width ``lite``, 40 Adam steps on aiface1),
copied under each pair's consent records, so the figures are the pipeline's cost, not a
real model's. Built on this machine in one process (no cluster). Reports wall time, frames a
second, and the per-frame IoU of the masks with the pixels that changed before encoding.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED_DATA, write_section  # noqa: E402

PAIRS = [  # (source, target, clips under synthetic/)
    ("p1", "p2", ["aiface1/speech_256.mp4", "aiface1/speech_512.mp4"]),
    ("p3", "p4", ["aiface2/intro_256.mp4", "aiface2/english_256.mp4"]),
    ("p5", "p6", ["aiface2/intro_512.mp4", "aiface2/english_512.mp4"]),
    ("p7", "p2", ["aiface1/speech_256.mp4", "aiface1/speech_512.mp4"]),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=25, help="frames a clip (default 25)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    if not (SHARED_DATA / "synthetic").is_dir():
        print(f"shared media not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    spec_ = importlib.util.spec_from_file_location("tinymodel", Path(__file__).resolve().parents[1] / "tests" / "convert" / "tinymodel.py")
    tm = importlib.util.module_from_spec(spec_)
    sys.modules["tinymodel"] = tm
    spec_.loader.exec_module(tm)  # type: ignore[union-attr]

    from facedub.dataset import build_dataset
    from facedub.fileio import write_json
    from facedub.model.checkpoint import read_meta
    from facedub.safety.consent import create_consent, save_consent

    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as d:
        root = Path(d)
        t = time.perf_counter()
        base = tm.train_tiny_model(root / "tiny", SHARED_DATA / "synthetic" / "aiface1" / "speech_256.mp4", steps=40)
        t_train = time.perf_counter() - t
        ids = sorted({x for s, tg, _ in PAIRS for x in (s, tg)})
        recs = {i: create_consent(f"synthetic {i}", "facedub bench", "bench", synthetic=True) for i in ids}
        lines = ["[dataset]", 'name = "bench"', f"frames = {args.frames}", ""]
        for i, r in recs.items():
            save_consent(r, root / f"{i}.json")
            lines += [f"[identities.{i}]", f'consent = "{i}.json"']
        for s, tg, clips in PAIRS:
            m = root / f"m-{s}-{tg}"
            shutil.copytree(base, m)
            meta = read_meta(m)
            meta["consent"] = {"source": recs[s].to_dict(), "target": recs[tg].to_dict()}
            write_json(m / "model.json", meta)
            paths = ", ".join(f'"{SHARED_DATA / "synthetic" / c}"' for c in clips)
            lines += ["", "[[pairs]]", f'source = "{s}"', f'target = "{tg}"', f'model = "{m.name}"', f"clips = [{paths}]"]
        (root / "spec.toml").write_text("\n".join(lines) + "\n")
        t = time.perf_counter()
        s = build_dataset(root / "spec.toml", root / "out")
        wall = time.perf_counter() - t
        frames = args.frames * (len(PAIRS) * 2 + s.real)
        import json

        per = [json.loads(p.read_text())["mask_check"] for p in (root / "out" / "labels" / "manipulated").rglob("*.json")]
    out = [
        f"- Built: {s.items} swapped + {s.real} real clips, {args.frames} frames each ({frames} frames written), "
        f"in {wall:.1f} s ({frames / wall:.1f} frames/s written; swap and real encode both counted); the tiny model trained in {t_train:.1f} s before",
        f"- Splits: " + "; ".join(f"{k}: {', '.join(v) or '-'}" for k, v in s.splits.items()),
        f"- Masks vs pixels changed before encoding, per frame, mask ≥ 4/255 vs any channel ≥ 1 level: "
        f"IoU min {min(p['min'] for p in per):.4f}, mean of clip means {sum(p['mean'] for p in per) / len(per):.4f}; "
        f"every nonzero mask pixel: min {min(p['min_any'] for p in per):.4f}, mean {sum(p['mean_any'] for p in per) / len(per):.4f}",
        "- 256² and 512² clips mixed; one process on the shared 2-core host (other work running: wall time is an upper bound)",
    ]
    print("\n".join(out))
    if not args.no_write:
        write_section("dataset", "Dataset build (facedub dataset)", "\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
