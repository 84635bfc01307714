"""Memory of a long 1080p input: resident set size against frames processed.

Builds a 1080p H.264 + AAC file of N frames by looping the first 100 frames of the shared
synthetic clip (scaled to 1080 high, centred on 1920), then, each in a fresh process:

- ``media``: open_media → VideoWriter(timed, audio copied), the reading and writing alone;
- ``convert``: convert_video with the fake detector and the inverting stand-in model of the
  tests (everything but face detection and the network: queues, compositing, watermark, label,
  encoder, audio copy, provenance).

RSS is read from /proc/self/status every ``--every`` frames; the peak is VmHWM. Flat memory:
the RSS at the end is within a few MB of the RSS after the first few hundred frames.

    python bench/bench_media_memory.py --frames 3000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from bench._common import SHARED_DATA, machine  # noqa: E402

W, H, FPS = 1920, 1080, 25


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    now = peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return now, peak


def make_input(path: Path, frames: int) -> None:
    import av
    import cv2
    import numpy as np

    from facedub.media.reader import open_media

    clip = SHARED_DATA / "synthetic" / "aiface1" / "speech_512.mp4"
    loop = []
    for f in open_media(clip).frames(limit=100):
        big = cv2.resize(f.rgb, (H, H), interpolation=cv2.INTER_LINEAR)
        canvas = np.zeros((H, W, 3), np.uint8)
        canvas[:, (W - H) // 2 : (W - H) // 2 + H] = big
        loop.append(canvas)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.options = {"preset": "ultrafast", "crf": "28"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            for p in vs.encode(av.VideoFrame.from_ndarray(loop[i % len(loop)], format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        n = int(48000 * frames / FPS)
        for k in range(0, n, 1024):
            t = (np.arange(k, min(n, k + 1024)) / 48000.0).astype(np.float32)
            s = np.stack([0.1 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
            af = av.AudioFrame.from_ndarray(s, format="fltp", layout="stereo")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)


def run_media(src: Path, out: Path, every: int) -> dict:
    from facedub.media.reader import open_media
    from facedub.media.writer import VideoWriter

    r = open_media(src)
    samples = [(0, *rss_mb())]
    t0 = time.perf_counter()
    with VideoWriter(out, r.width, r.height, r.fps, audio_from=src, timed=True, preset="ultrafast") as w:
        for f in r:
            w.write(f.rgb, f.time)
            if w.frames % every == 0:
                samples.append((w.frames, *rss_mb()))
    samples.append((w.frames, *rss_mb()))
    return {"samples": samples, "seconds": time.perf_counter() - t0}


def run_convert(src: Path, out: Path, every: int) -> dict:
    import importlib.util

    from facedub.convert import ConvertConfig, convert_video
    from facedub.progress import NullReporter

    spec = importlib.util.spec_from_file_location("convert_tinymodel", REPO / "tests" / "convert" / "tinymodel.py")
    helpers = importlib.util.module_from_spec(spec)
    sys.modules["convert_tinymodel"] = helpers  # its dataclasses look their module up
    spec.loader.exec_module(helpers)
    samples = [(0, *rss_mb())]

    class Rep(NullReporter):
        n = 0

        def advance(self, n: int = 1, **metrics: object) -> None:
            self.n += n
            if self.n % every == 0:
                samples.append((self.n, *rss_mb()))

    t0 = time.perf_counter()
    s = convert_video(src, helpers.InvertNet(), out, ConvertConfig(preset="ultrafast"), Rep(), detector=helpers.FakeDetector((H, W)))
    samples.append((s.frames, *rss_mb()))
    return {"samples": samples, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--only", choices=["media", "convert"])
    ap.add_argument("--child", nargs=3, metavar=("KIND", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, src, out = args.child
        res = (run_media if kind == "media" else run_convert)(Path(src), Path(out), args.every)
        print(json.dumps(res))
        return
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "long1080.mp4"
        t = time.perf_counter()
        make_input(src, args.frames)
        print(f"input: {args.frames} frames {W}x{H} @ {FPS} fps + AAC, {src.stat().st_size / 1e6:.0f} MB, made in {time.perf_counter() - t:.0f} s")
        for kind in [args.only] if args.only else ["media", "convert"]:
            out = Path(d) / f"{kind}.mp4"
            p = subprocess.run([sys.executable, __file__, "--every", str(args.every), "--child", kind, str(src), str(out)], capture_output=True, text=True)
            if p.returncode:
                print(p.stderr[-3000:])
                raise SystemExit(p.returncode)
            res = json.loads(p.stdout.strip().splitlines()[-1])
            s = res["samples"]
            print(f"\n{kind}: {s[-1][0]} frames in {res['seconds']:.0f} s ({s[-1][0] / res['seconds']:.1f} frames/s)")
            print("| frames | RSS MB | peak RSS MB |\n|---:|---:|---:|")
            for n, now, peak in s:
                print(f"| {n} | {now:.0f} | {peak:.0f} |")
            steady = [now for n, now, _ in s[:-1] if n >= 500]  # while running (the last sample is after it ended)
            if steady:
                print(f"RSS from frame 500 on: {min(steady):.0f}–{max(steady):.0f} MB (spread {max(steady) - min(steady):.0f} MB); peak {s[-1][2]:.0f} MB")
    print(f"\nmachine: {machine()}")


if __name__ == "__main__":
    main()
