"""What identity-in-every-frame and shot-cut detection add to convert, and whether they work.

    python bench/bench_shots.py            # costs + a 150-frame cut clip converted (a few minutes on 2 cores)
    python bench/bench_shots.py --quick    # costs only, fewer repeats

Costs are CPU milliseconds of the calling thread (``time.thread_time``), the lower of two
rounds, so other work on a shared machine inflates them less than wall time:

* cut detection a frame (thumbnail + ECC alignment) at 512² and 1920×1080;
* the appearance thumbnail a face a frame (how a track notices someone else taking it over);
* one dlib descriptor (paid when a track is first seen, every ``identity_every`` frames, after
  a cut, and when a track jumps or changes look).

Then a clip of shots joined by hard cuts — aiface1 (60 frames) | aiface2 (40) | grey (10) |
aiface1 (40), 512², from ``../shared/data`` — is converted with the real detector and dlib and a
briefly trained tiny model whose target descriptor is aiface1's: cuts found, identity checks
made, the amortised identity cost a frame, and the PSNR inside each face (output vs input) per
shot: the other person's must stay ≥ 33 dB, the target's must be changed (occlusion off).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def cpu_ms(fn, repeats: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(2):
        t = time.thread_time()
        for _ in range(repeats):
            fn()
        best = min(best, (time.thread_time() - t) / repeats * 1000)
    return best


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="costs only, fewer repeats")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    lines: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        lines.append(f"- {line}")

    if not DATA.is_dir():
        print(f"shared media not found at {DATA}")
        return 2
    import cv2

    from facedub.convert.cuts import change_score, signature
    from facedub.convert.target import appearance
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.media.reader import open_media

    a = [f.rgb for f in open_media(DATA / "synthetic/aiface1/speech_512.mp4").frames(limit=140)]
    b = [f.rgb for f in open_media(DATA / "synthetic/aiface2/intro_512.mp4").frames(limit=40)]
    reps = 20 if args.quick else 100
    hd = [cv2.resize(f, (1920, 1080)) for f in a[:2]]
    s512 = [signature(f) for f in a[:2]]
    s1080 = [signature(f) for f in hd]
    cut512 = cpu_ms(lambda: (signature(a[1]), change_score(s512[0], s512[1])), reps)
    cut1080 = cpu_ms(lambda: (signature(hd[1]), change_score(s1080[0], s1080[1])), reps)
    with FaceDetector() as det:
        lm = det.detect(a[0])[0].landmarks68
    look = cpu_ms(lambda: appearance(a[0], lm), reps)
    enc = IdentityEncoder()
    enc.descriptor(a[0], lm)
    desc = cpu_ms(lambda: enc.descriptor(a[0], lm), 2 if args.quick else 5)
    emit(f"cut detection a frame: {cut512:.2f} ms CPU at 512², {cut1080:.2f} ms at 1920×1080")
    emit(f"appearance thumbnail a face a frame: {look:.2f} ms CPU; one dlib descriptor: {desc:.0f} ms CPU")
    if args.quick:
        return 0

    import av

    from facedub.convert import ConvertConfig, convert_video
    from facedub.model import load_model

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "convert"))
    import tinymodel  # noqa: E402

    grey = [np.full((512, 512, 3), (90, 110, 130), np.uint8)] * 10
    frames = a[:60] + b[:40] + grey + a[100:140]
    shots = {"target": [(0, 60), (110, 150)], "other person": [(60, 100)], "no face": [(100, 110)]}
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "shots.mp4", Path(tmp) / "out.mp4"
        with av.open(str(src), "w") as c:
            vs = c.add_stream("libx264", rate=25)
            vs.width, vs.height, vs.pix_fmt = 512, 512, "yuv420p"
            vs.options = {"crf": "14"}
            for f in frames:
                for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(p)
            for p in vs.encode(None):
                c.mux(p)
        tinymodel.train_tiny_model(Path(tmp) / "model", DATA / "synthetic/aiface1/speech_512.mp4", steps=12)
        model = load_model(Path(tmp) / "model", "cpu")
        with FaceDetector() as det:
            model.meta["target_descriptor"] = list(np.mean([enc.descriptor(f, det.detect(f)[0].landmarks68) for f in a[::40]], axis=0))
        # Occlusion off: this measures who is swapped, not how much of the face is pasted.
        s = convert_video(src, model, out, ConvertConfig(visible_label=False, occlusion="off"))
        emit(
            f"cut clip: {s.frames} frames, {s.cuts} cuts (3 made), {s.swapped} swapped (100 are the target's), "
            f"{s.identity_checks} identity checks = {s.identity_checks * desc / s.frames:.1f} ms CPU a frame amortised"
        )
        emit(f"busy (s): {s.busy}")
        fin = [f.to_ndarray(format="rgb24") for f in av.open(str(src)).decode(video=0)]
        fout = [f.to_ndarray(format="rgb24") for f in av.open(str(out)).decode(video=0)]
        with FaceDetector() as det:
            for name, spans in shots.items():
                vals = []
                for lo, hi in spans:
                    for i in range(lo, hi):
                        for f in det.detect(fin[i]):
                            x0, y0, x1, y1 = (int(v) for v in f.bbox)
                            vals.append(psnr(fin[i][y0:y1, x0:x1], fout[i][y0:y1, x0:x1]))
                whole = min(psnr(fin[i], fout[i]) for lo, hi in spans for i in range(lo, hi))
                inside = f"inside faces PSNR min {min(vals):.1f} / max {max(vals):.1f} dB" if vals else "no faces"
                emit(f"{name}: {inside}; whole frames min {whole:.1f} dB")
    if not args.no_write:
        from bench._common import write_section

        write_section(
            "shots",
            "Identity in every frame and shot cuts (convert)",
            "CPU milliseconds of the calling thread, the lower of two rounds. The cut clip is aiface1 (60 frames) | "
            "aiface2 (40) | grey (10) | aiface1 (40) at 512², converted with the real detector and dlib, a briefly "
            "trained tiny model whose target descriptor is aiface1's, occlusion off. Goals: other person ≥ 33 dB "
            "inside the face, the target changed.\n\n" + "\n".join(lines),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
