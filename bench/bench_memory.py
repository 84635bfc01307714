"""Memory of extraction from a long 1080p input: peak RSS and RSS growth per 1,000 frames.

Issue 17 asks for a one-hour 1080p input with flat memory. An hour (90,000 frames) cannot be
extracted in a benchmark run on 2 shared cores, so this builds a long 1080p H.264 + AAC file
(``--frames``, default 6,000 = 4 minutes at 25 fps, the first 100 frames of the shared
synthetic clip looped, scaled to 1080 high and centred; bench_media_memory's generator) and
runs ``extract_faceset`` on it in a fresh process with ``--every`` (default 5: every frame is
decoded, every 5th goes through detection, alignment, filters and the PNG writers). RSS is read
from /proc/self/status every ``--sample`` processed frames; the peak is VmHWM. The growth is
the least-squares slope of RSS against input frames after the first ``--warmup`` frames
(libraries loaded, queues and caches filled), in MB per 1,000 input frames; the faceset's own
records (one per kept face) are part of what legitimately grows.

    python bench/bench_memory.py [--frames 15000] [--every 5] [--sample 100] [--no-write]

Writes the "memory" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from bench._common import SHARED_DATA, gemm_line, machine, write_section  # noqa: E402
from bench.bench_media_memory import FPS, H, W, make_input, rss_mb  # noqa: E402


def run_extract(src: Path, out: Path, every: int, sample: int) -> dict:
    """Extract in this process; RSS samples as (input frame, RSS MB, peak MB)."""
    from facedub.extract import ExtractConfig, extract_faceset
    from facedub.progress import NullReporter

    samples = [(0, *rss_mb())]

    class Rep(NullReporter):
        n = 0
        extracting = False  # the content gate advances the same reporter first (one per sample)

        def start(self, phase: str, total: int | None = None, unit: str = "it") -> None:
            self.extracting = phase.startswith("extract")

        def advance(self, n: int = 1, **metrics: object) -> None:
            if not self.extracting:
                return
            self.n += n
            if self.n % sample == 0:
                samples.append((self.n * every, *rss_mb()))

    rep = Rep()
    t0 = time.perf_counter()
    s = extract_faceset([src], out, ExtractConfig(every=every), rep)
    seconds = time.perf_counter() - t0
    samples.append((rep.n * every, *rss_mb()))
    d = s.to_dict() if hasattr(s, "to_dict") else {}
    return {"samples": samples, "seconds": seconds, "processed": rep.n, "faces": d.get("faces_kept", d.get("kept"))}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y on x (0 with fewer than two points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in points) / sxx


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=15000, help="frames of the generated 1080p input")
    ap.add_argument("--every", type=int, default=5, help="extract every Nth frame (all are decoded)")
    ap.add_argument("--sample", type=int, default=100, help="read RSS every N processed frames")
    ap.add_argument("--warmup", type=int, default=1000, help="input frames left out of the slope")
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md alone")
    ap.add_argument("--child", nargs=2, metavar=("SRC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_extract(Path(args.child[0]), Path(args.child[1]), args.every, args.sample)))
        return 0
    if not (SHARED_DATA / "synthetic" / "aiface1" / "speech_512.mp4").is_file():
        print(f"bench_memory: {SHARED_DATA} not found (needs ../shared/data); skipped", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "long1080.mp4"
        t = time.perf_counter()
        make_input(src, args.frames)
        made = f"{args.frames} frames {W}x{H} @ {FPS} fps ({args.frames / FPS / 60:.1f} min) + AAC, {src.stat().st_size / 1e6:.0f} MB"
        print(f"input: {made}, made in {time.perf_counter() - t:.0f} s", flush=True)
        cmd = [sys.executable, __file__, "--every", str(args.every), "--sample", str(args.sample), "--child", str(src), str(Path(d) / "faceset")]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            print(p.stderr[-3000:], file=sys.stderr)
            return p.returncode
        res = json.loads(p.stdout.strip().splitlines()[-1])
    s = res["samples"]
    running = s[:-1]  # the last sample is taken after extraction returned
    steady = [(n, now) for n, now, _ in running if n >= args.warmup]
    growth = 1000 * slope(steady)
    peak = max(pk for _, _, pk in s)
    first = steady[0] if steady else (0, 0.0)
    last = steady[-1] if steady else (0, 0.0)
    rows = "\n".join(f"| {n} | {now:.0f} | {pk:.0f} |" for n, now, pk in s[:: max(1, len(s) // 15)] + ([] if (len(s) - 1) % max(1, len(s) // 15) == 0 else [s[-1]]))
    body = (
        f"{gemm_line()}.\n\n"
        f"Input: {made} (bench_media_memory's generator). `extract_faceset(ExtractConfig(every={args.every}))` "
        f"in a fresh process: every frame decoded, {res['processed']} processed, in {res['seconds']:.0f} s "
        f"({args.frames / res['seconds']:.1f} input frames/s).\n\n"
        f"- **Peak RSS: {peak:.0f} MB** (VmHWM, content gate and detection models included).\n"
        f"- **RSS growth: {growth:+.2f} MB per 1,000 input frames** (least squares over {len(steady)} samples from "
        f"input frame {args.warmup} on: {first[1]:.0f} MB at frame {first[0]}, {last[1]:.0f} MB at frame {last[0]}).\n"
        + (
            f"- Extrapolated to one hour at 25 fps (90,000 frames): {last[1] + growth * (90000 - last[0]) / 1000:.0f} MB, "
            "if the slope holds (not measured: an hour is not run here).\n\n"
            if growth > 0 else "- No growth to extrapolate to an hour (not measured: an hour is not run here).\n\n"
        )
        + "| input frame | RSS MB | peak RSS MB |\n|---:|---:|---:|\n" + rows + "\n"
    )
    print(body)
    print(f"machine: {machine()}")
    if not args.no_write:
        write_section("memory", "Memory over a long 1080p input (extract)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
