"""Train the generic occlusion model shipped in the package, reproducibly, from ``../shared/data``.

    python bench/train_occlusion.py                 # extract, train 2,000 steps, write the weights
    python bench/train_occlusion.py --quick         # a few steps into runs/occlusion (checks the script; ships nothing)

Faces are extracted with facedub's own ``extract`` (every 8th frame) from the synthetic clips
and nine of the eleven GRID clips; kept in ``runs/occlusion`` for the next run. Held out, never
trained on: the second half of aiface1's clip (what ``bench/bench_occlusion.py`` converts), the
GRID clips ``swiz3n`` and ``sbwe5n`` and the portrait ``aiface6``. The network learns from
synthetic occluders pasted onto these faces (see :mod:`facedub.convert.occlusion`), and from
changes of the face's look that leave the target as it is (other skin tones, facial hair, hard
cast shadows, light falling off, white balance, gamma, blur, noise, JPEG), so a shadow or a darker
face is not taken for an occluder. The script then reports how well it finds occluders on the
held-out faces (IoU of the hidden face part, fresh occluders from another seed), how much of a
clear held-out face it calls hidden (``bench/occlusion_heldout.py``), and writes
``src/facedub/convert/weights/occlusion.safetensors``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench._common import REPO, SHARED_DATA  # noqa: E402

WORK = REPO / "runs" / "occlusion"
HELD_OUT_GRID = ("swiz3n.mpg", "sbwe5n.mpg")
EVERY = 8
AIFACE1_FRAMES = 50  # sampled frames of aiface1 used for training: frames 0–392 of 786


def sources() -> dict[str, tuple[list[Path], int | None]]:
    """Faceset name → (input files, sampled-frame limit per file)."""
    syn = SHARED_DATA / "synthetic"
    grid = sorted(p for p in (SHARED_DATA / "grid").glob("*.mpg") if p.name not in HELD_OUT_GRID)
    return {
        "aiface1-first-half": ([syn / "aiface1" / "speech_512.mp4"], AIFACE1_FRAMES),
        "aiface2": ([syn / "aiface2" / "intro_512.mp4", syn / "aiface2" / "english_512.mp4"], None),
        **{f"grid-{p.stem}": ([p], None) for p in grid},
    }


def held_out() -> dict[str, tuple[list[Path], int | None]]:
    return {f"grid-{n[:-4]}": ([SHARED_DATA / "grid" / n], None) for n in HELD_OUT_GRID}


def extract_all(specs: dict[str, tuple[list[Path], int | None]]) -> list[Path]:
    from facedub.extract import ExtractConfig, extract_faceset
    from facedub.faceset.store import faceset_exists

    out = []
    for name, (files, limit) in specs.items():
        folder = WORK / "facesets" / name
        if not faceset_exists(folder) or not (folder / ".complete").exists():
            print(f"extracting {name} ({', '.join(f.name for f in files)})", flush=True)
            extract_faceset([str(f) for f in files], folder, ExtractConfig(every=EVERY, max_frames=limit))
            (folder / ".complete").write_text("")
        out.append(folder)
    return out


def portrait_crops() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The held-out portrait aiface6, aligned as extract aligns (crops, landmarks in crop px)."""
    from facedub.faces.align import CROP_SIZE, align_matrix, transform_points, warp
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import load_image

    rgb = load_image(SHARED_DATA / "portraits" / "aiface6.png")
    with FaceDetector() as det:
        faces = det.detect(rgb)
    if not faces:
        return [], []
    a = align_matrix(faces[0].points5)
    return [warp(rgb, a, CROP_SIZE)], [transform_points(np.asarray(faces[0].landmarks68), a)]


def evaluate(model, data, seed: int = 1000, n: int = 256) -> dict[str, float]:
    """Hidden-face IoU and visible-face accuracy on ``n`` fresh synthetic pairs from ``data``."""
    from facedub.convert.occlusion import hidden_iou, synth_batch

    rng = np.random.default_rng(seed)
    x, y, f = synth_batch(rng, data, n, model.size)
    p = model(x)
    ious = [hidden_iou(p[i], y[i], f[i]) for i in range(n) if ((y[i] < 0.5) & (f[i] > 0.5)).any()]
    inside = f > 0.5
    acc = float(((p >= 0.5) == (y >= 0.5))[inside].mean())
    false_hidden = float(((p < 0.5) & (y >= 0.5))[inside].sum() / max((y >= 0.5)[inside].sum(), 1))
    return {"hidden_iou": float(np.mean(ious)), "face_accuracy": acc, "false_hidden": false_hidden}


class _Progress:
    """Prints the loss every 100 steps (the library reports through a Reporter)."""

    def __init__(self) -> None:
        self.n, self.loss, self.t0 = 0, 0.0, time.perf_counter()

    def start(self, *a, **k) -> None:
        pass

    def advance(self, n: int = 1, **info) -> None:
        self.n += n
        self.loss += info.get("loss", 0.0)
        if self.n % 100 == 0:
            print(f"  step {self.n}: loss {self.loss / 100:.4f} ({time.perf_counter() - self.t0:.0f} s)", flush=True)
            self.loss = 0.0

    def should_stop(self) -> bool:
        return False

    def finish(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (batch synthesis runs on another thread)")
    ap.add_argument("--quick", action="store_true", help="20 steps, weights into runs/occlusion (nothing shipped)")
    ap.add_argument("--out", default=None, help="weights file (default: the package's weights/occlusion.safetensors)")
    args = ap.parse_args()
    if not SHARED_DATA.is_dir():
        sys.exit(f"{SHARED_DATA}: shared test data not found")

    from facedub.convert import occlusion as oc

    steps = 20 if args.quick else args.steps
    out = Path(args.out) if args.out else (WORK / "quick.safetensors" if args.quick else oc.WEIGHTS)
    folders = extract_all(sources())
    crops, lms = oc.faceset_crops(folders)
    data = oc.crop_set(crops, lms)
    print(f"{len(crops)} training faces from {len(folders)} facesets", flush=True)
    cfg = oc.OcclusionTrainConfig(steps=steps, batch=args.batch, seed=args.seed, threads=args.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    net = oc.train_occlusion(data, cfg, _Progress())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    desc = (
        f"bench/train_occlusion.py: {steps} steps of {args.batch}, seed {args.seed}, {len(crops)} faces "
        f"(shared data: aiface1 frames 0-392, aiface2, 9 GRID clips; every {EVERY}th frame); "
        "label-preserving skin tone, facial hair, cast shadows, relighting, camera augmentation"
    )
    oc.save_weights(out, net, oc.OcclusionInfo(size=cfg.size, widths=cfg.widths, trained=desc))
    model = oc.load_occlusion(out)
    print(f"trained {steps} steps in {wall:.0f} s wall, {cpu:.0f} s CPU; wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    print("on training faces, fresh occluders:", evaluate(model, data))
    ho_crops, ho_lms = oc.faceset_crops(extract_all(held_out()))
    pc, pl = portrait_crops()
    print("on held-out faces (GRID swiz3n, sbwe5n, aiface6):", evaluate(model, oc.crop_set(ho_crops + pc, ho_lms + pl)))
    from bench import occlusion_heldout

    res = occlusion_heldout.measure(model)
    print("share of a clear held-out face called hidden (bench/occlusion_heldout.py):")
    print("\n".join(occlusion_heldout.table(res)))


if __name__ == "__main__":
    main()
