"""What occlusion-aware training costs, and the 256 px ``saehd`` model's step on a CPU for scale.

Writes the BENCHMARKS.md section ``train_occlusion``:

* the one-time cost per faceset image of ``--occlusion auto``: loading a faceset with the keep
  masks computed (the occlusion network on each crop, the map written to the cache) and again
  from the cache, each minus the same load with occlusion off, per image;
* ms per training step with and without the mask (``lite`` at its defaults, batch 16 per
  identity, fp32), the two interleaved step by step in one process;
* ``saehd`` forward + backward per example on the CPU: the tiny test config and the 256 px
  default (GFLOP per example counted from the layers, as bench_train does).

The facesets are drawn by ``tests/train/fakefaces.py`` (synthetic 256 px crops with 68
landmarks and a pasted box over one cheek) unless ``--faceset A B`` names real ones: the
network's cost does not depend on who is in the crop.

    python bench/bench_train_occlusion.py             # ~5 min on 2 quiet cores
    python bench/bench_train_occlusion.py --quick     # smoke test, writes nothing
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench._common import REPO, write_section  # noqa: E402


def _fakefaces():
    spec = importlib.util.spec_from_file_location("fakefaces", REPO / "tests" / "train" / "fakefaces.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_facesets(root: Path, n: int) -> tuple[Path, Path]:
    from PIL import Image

    ff = _fakefaces()
    out = []
    for ident, seed in (("alice", 0), ("bob", 1)):
        folder = ff.make_faceset(root / ident, ident, n=n, seed=seed)
        for p in sorted((folder / "faces").glob("*.png")):  # a grey box over the left cheek
            a = np.asarray(Image.open(p).convert("RGB")).copy()
            a[118:168, 88:126] = 90
            Image.fromarray(a).save(p)
        out.append(folder)
    return out[0], out[1]


def cache_cost(folder: Path, size: int, coverage: float, cache: Path, reps: int) -> dict[str, float]:
    """ms per image: load with occlusion off, computing the masks (cold cache), from the cache."""
    from facedub.faceset import load_faceset
    from facedub.train.data import load_identity
    from facedub.train.occlusion import MapSource

    fs = load_faceset(folder)
    n = len(fs.faces)
    off, cold, warm = [], [], []
    for r in range(reps):
        t = time.perf_counter()
        load_identity("source", fs, folder, size, coverage)
        off.append(time.perf_counter() - t)
        src = MapSource(cache=cache / f"rep{r}")
        t = time.perf_counter()
        d = load_identity("source", fs, folder, size, coverage, src)
        cold.append(time.perf_counter() - t)
        assert src.computed == n
        src2 = MapSource(cache=cache / f"rep{r}")
        t = time.perf_counter()
        load_identity("source", fs, folder, size, coverage, src2)
        warm.append(time.perf_counter() - t)
        assert src2.computed == 0
    med = lambda xs: statistics.median(xs) * 1000 / n  # noqa: E731
    # The box's true share of the face region the network is trained to find (its face target).
    from facedub.convert.occlusion import face_target
    from facedub.faces.align import transform_points

    rec = fs.faces[0]
    face = face_target(transform_points(rec.landmarks_array(), rec.affine_array()), 256, 1.0)
    box = np.zeros_like(face)
    box[118:168, 88:126] = 1
    truth = float((face * box).sum() / face.sum())
    return {"n": n, "off": med(off), "cold": med(cold), "warm": med(warm), "hidden": d.occlusion["hidden_share"], "truth": truth}


def step_cost(a: Path, b: Path, cache: Path, steps: int) -> dict[str, list[float]]:
    """ms per training step of ``lite`` (defaults: 80 px, batch 16 per identity, fp32) with the
    keep mask and without, interleaved step by step in one process (what ``_Run.one_step`` does:
    two augmented batches, forward of both identities, both losses, backward, Adam), so that the
    load of a shared machine falls on both alike."""
    from facedub.faceset import load_faceset
    from facedub.model import build_model, default_config
    from facedub.train.config import AugmentConfig
    from facedub.train.data import Sampler, load_identity, training_batch
    from facedub.train.losses import reconstruction_loss
    from facedub.train.occlusion import MapSource

    cfg = default_config("lite")
    cl = torch.channels_last
    runs = {}
    for mode in ("off", "auto"):
        occ = MapSource(cache=cache) if mode == "auto" else None
        src = load_identity("source", load_faceset(a), a, cfg.size, cfg.coverage, occ)
        tgt = load_identity("target", load_faceset(b), b, cfg.size, cfg.coverage, occ)
        torch.manual_seed(0)
        net = build_model("lite", cfg).to(memory_format=cl)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        smp = Sampler({"source": src.train.shape[0], "target": tgt.train.shape[0]}, 0)
        runs[mode] = (src, tgt, net, opt, smp)

    def one(mode: str) -> float:
        src, tgt, net, opt, smp = runs[mode]
        t = time.perf_counter()
        bs = [None if x is None else x.contiguous(memory_format=cl) for x in training_batch(src, tgt, smp.take("source", 16), cfg.size, AugmentConfig(), smp.gen)]
        bt = [None if x is None else x.contiguous(memory_format=cl) for x in training_batch(tgt, src, smp.take("target", 16), cfg.size, AugmentConfig(), smp.gen)]
        (ps, ms), (pt, mt) = net.forward_both(bs[0], bt[0])
        loss = reconstruction_loss(ps, bs[1], cfg, bs[3], ms, bs[2], bs[4]) + reconstruction_loss(pt, bt[1], cfg, bt[3], mt, bt[2], bt[4])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return (time.perf_counter() - t) * 1000

    for mode in ("off", "auto"):  # warm-up (oneDNN)
        one(mode)
    res: dict[str, list[float]] = {"off": [], "auto": []}
    for i in range(steps):
        for mode in (("off", "auto") if i % 2 == 0 else ("auto", "off")):
            res[mode].append(one(mode))
    return res


def saehd_cost(cfg_kw: dict, batch: int, reps: int) -> tuple[float, float, int]:
    """(ms per example of forward + backward + loss, GFLOP per example, parameters) on the CPU."""
    from bench.bench_train import flops_per_example
    from facedub.model import build_model, default_config
    from facedub.train.losses import reconstruction_loss

    torch.manual_seed(0)
    cfg = default_config("saehd", **cfg_kw)
    net = build_model("saehd", cfg).to(memory_format=torch.channels_last)
    s = cfg.size
    x = torch.rand(batch, 3, s, s).contiguous(memory_format=torch.channels_last)
    em, hull = (torch.rand(batch, 1, s, s) > 0.9).float(), torch.ones(batch, 1, s, s)
    times = []
    for i in range(reps + 2):
        t = time.perf_counter()
        (a, ma), (b2, mb) = net.forward_both(x, x)
        loss = reconstruction_loss(a, x, cfg, em, ma, hull) + reconstruction_loss(b2, x, cfg, em, mb, hull)
        net.zero_grad(set_to_none=True)
        loss.backward()
        if i > 1:  # the first two are warm-up
            times.append(time.perf_counter() - t)
    ms = statistics.median(times) * 1000 / (2 * batch)  # both identities' examples
    return ms, flops_per_example(net, s) / 1e9, sum(p.numel() for p in net.parameters())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, writes nothing")
    ap.add_argument("--faces", type=int, default=200, help="faces per drawn faceset (default 200)")
    ap.add_argument("--steps", type=int, default=30, help="timed training steps per mode, interleaved (default 20)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, steps = (24, 2) if args.quick else (args.faces, args.steps)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["FACEDUB_HOME"] = str(tmp / "home")  # consent keys of the drawn facesets
        a, b = make_facesets(tmp / "fs", n)
        cc = cache_cost(a, 80, 0.875, tmp / "cache", 1 if args.quick else 3)
        print(f"cache, per image: off {cc['off']:.2f} ms, cold {cc['cold']:.2f} ms, warm {cc['warm']:.2f} ms", flush=True)
        sc = step_cost(a, b, tmp / "cache" / "rep0", steps)
        print(f"ms/step: off {statistics.median(sc['off']):.0f}, auto {statistics.median(sc['auto']):.0f}", flush=True)
        tiny = saehd_cost(dict(size=64, e_dims=8, ae_dims=32, d_dims=8, d_mask_dims=4), 4, 2 if args.quick else 15)
        print(f"saehd tiny: {tiny[0]:.2f} ms/example", flush=True)
        big = saehd_cost({}, 1, 1 if args.quick else 3) if not args.quick else saehd_cost(dict(width=0.25), 1, 1)
        print(f"saehd 256: {big[0]:.1f} ms/example, {big[1]:.1f} GFLOP", flush=True)
    if args.quick:
        return 0
    off, auto = statistics.median(sc["off"]), statistics.median(sc["auto"])
    load1 = os.getloadavg()[0]

    def q(xs: list[float]) -> str:
        qs = statistics.quantiles(xs, n=4)
        return f"{qs[0]:.0f}–{qs[2]:.0f}"
    body = f"""\
What `facedub train --occlusion auto` costs (the occlusion network's visible-face map of every
faceset crop, cached; the reconstruction loss multiplied by the keep mask), on two drawn facesets
of {n} faces each (`tests/train/fakefaces.py`, 256 px crops with a grey box pasted over one cheek:
the box is {100 * cc['truth']:.1f} % of the face region; the shipped network marks {100 * cc['hidden']:.1f} %
of it hidden on these drawn faces, which are unlike the real faces it was trained on). The
network's cost does not depend on who is in the crop.

**One-time cost per faceset image** (`lite` geometry, 80 px; median of {3} loads of {n} faces):

| load | ms per image | over occlusion off |
|---|---|---|
| occlusion off | {cc['off']:.2f} | — |
| auto, masks computed (network + PNG written to the cache) | {cc['cold']:.2f} | +{cc['cold'] - cc['off']:.2f} |
| auto, masks from the cache | {cc['warm']:.2f} | +{cc['warm'] - cc['off']:.2f} |

**Per training step** (`lite` defaults: 80 px, batch 16 per identity, fp32; what a training step
does — two augmented batches, forward of both identities, both losses, backward, Adam — timed
step by step with and without the keep mask, interleaved in one process, {steps} steps each after
a warm-up; masks already cached):

| occlusion | median ms per step | quartiles | examples/s |
|---|---|---|---|
| off | {off:.0f} | {q(sc['off'])} | {32000 / off:.1f} |
| auto | {auto:.0f} | {q(sc['auto'])} | {32000 / auto:.1f} |

Difference of the medians: {auto - off:+.0f} ms per step ({100 * (auto - off) / off:+.1f} %). The box is
shared with other jobs (1-minute load average {load0:.1f} at the start of this run, {load1:.1f} at
the end, on {os.cpu_count()} logical CPUs), so the absolute times are slower than on a quiet
machine (BENCHMARKS.md "train") and a difference of a few per cent is within the noise.

**`saehd` on this CPU, for scale** (forward + backward + loss of both identities, fp32, median;
GFLOP per example counted from the layers, forward + backward ≈ 3 × forward):

| config | parameters | GFLOP / example | ms / example |
|---|---|---|---|
| tiny (test config: 64 px, e/ae/d/mask dims 8/32/8/4), batch 4 | {tiny[2] / 1e6:.2f} M | {tiny[1]:.2f} | {tiny[0]:.1f} |
| default 256 px (df-d, dims 64/256/64/22), batch 1 | {big[2] / 1e6:.1f} M | {big[1]:.1f} | {big[0]:.0f} |

At the 256 px default a CPU step of batch 8 per identity takes about {16 * big[0] / 1000:.0f} s here:
`saehd` is for CUDA.
"""
    write_section("train_occlusion", "Occlusion-aware training: cost of the mask; saehd on a CPU", body)
    print("wrote the train_occlusion section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
