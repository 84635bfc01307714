"""Robustness suite (issue 17): clips made from ../shared/data by known transforms, converted, checked.

    python bench/robustness.py --model MODEL            # full suite, writes the "robustness" section
    python bench/robustness.py --model MODEL --short    # the short versions the tests run (same frame sizes, few frames)
    python bench/robustness.py --model MODEL --cases people,cuts --no-write

Every clip is built from the shared media by transforms the generator applies itself
(placement, hard cuts, rotation / zoom / pan, scaling, exposure and white-balance gains), so
the ground truth is exact: the 68 landmarks of each source frame are detected once on the
*untransformed* clip (cached in the work folder) and carried through the same transform.
The checker then compares the converted output with the generated input inside regions
built from those points; it never trusts the converter's own detections.

Cases (``CASES``) and what must hold (the issue's conditions):

* ``people``  the target beside another person (two clips side by side) and the two changing
  places mid-clip: only the target swapped; PSNR inside the bystander's face ≥ 33 dB; the
  target found again within ``REACQUIRE_FRAMES`` frames after the swap of places.
* ``cuts``    shots of the target (two framings), of other people (GRID volunteers and the
  bystander) and empty shots, joined by hard cuts (one empty shot only 4 frames long, between
  two target shots at the same place: a bridge over it would paste a face into empty frames):
  other people's and empty frames untouched (≥ 33 dB), the target swapped again within
  ``PICKUP_FRAMES`` frames of a new target shot, nothing pasted outside the current shot's
  faces in the first frames after each cut (no previous-shot face).
* ``motion``  roll ±30°, zoom 0.6–1.4×, pan: frames without a swap ≤ 2 %, landmark jitter of
  the output ≤ 1.2× the input's (measured as ``facedub.evaluate`` does), identity transfer.
* ``small``   face widths 160 → 48 px in a 1920×1080 frame (one shot per size): a 90 px face
  swapped in ≥ 98 % of its frames; the smallest size that is reported.
* ``large``   the face filling the frame.  ``partial`` the face panning partly out of frame.
* ``light``   exposure ramp ×0.5 → ×1.4, then a white-balance shift: mean ΔE (CIE76, the mean
  L*a*b* of the inner face, output vs input) ≤ 3, i.e. the swapped face's colour follows the
  frame's light.

"Swapped" and "untouched" are read from pixels: a face is swapped in a frame when the PSNR
inside its inner face (the hull of brows, eyes, nose and mouth), output vs input, is below
``SWAPPED_DB``; a region is untouched at ≥ ``UNTOUCHED_DB``. The visible "AI-generated"
label (a deliberate mark) is left out of every region, as ``facedub.evaluate`` does. The
conversion runs with the default ``ConvertConfig``.

Identity (does the swapped face read as the model's source person, ``reads_as_source`` of
``facedub.evaluate.metrics``) and jitter need a trained model: they are measured with
``quality=True`` (the benchmark), not in the tests' short runs with a tiny model.

Files: ``WORK/CASE/input.mp4`` + ``truth.json`` (generator), ``output.mp4`` (convert),
``check.json`` (checker); ``WORK/cache`` holds the source clips' landmarks. Nothing is
written into the repository but the BENCHMARKS.md section.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, SHARED_DATA  # noqa: E402

CASES = ("people", "cuts", "motion", "small", "large", "partial", "light")
FPS = 25
UNTOUCHED_DB = 33.0  # the issue: other people's faces and empty frames stay at ≥ 33 dB
SWAPPED_DB = 30.0  # an inner face this far from the input has been replaced
MAX_MISSED = 0.02  # frames without a swap (where the target is in view)
JITTER_RATIO = 1.2  # output landmark jitter / input landmark jitter
MAX_DELTA_E = 3.0  # mean |Lab difference| of the inner face's mean colour, output vs input
MIN_SOURCE_SHARE = 0.90  # identity transfer: sampled swapped frames reading as the source (the quality goal)
PICKUP_FRAMES = 2  # a new target shot is swapped from at latest its (PICKUP_FRAMES+1)-th frame
REACQUIRE_FRAMES = 5  # the target swapped again at most this many frames after the swap of places
AFTER_CUT_FRAMES = 5  # frames after each cut checked for remains of the previous shot
IDENTITY_EVERY = 5  # quality: identity descriptors on every Nth swapped frame
INPUT_CRF = 10  # generated inputs are near-lossless H.264
PARTIAL_VISIBLE = 0.8  # partial: frames with at least this share of the face in view must be swapped
SMALL_SIZES = (160, 120, 90, 72, 60, 48)  # face widths (jaw span, px) in the 1920×1080 "small" clip
SMALL_GOAL_PX = 90

PEOPLE = ("aiface1", "aiface2")


def _clip(name: str) -> Path:
    syn = SHARED_DATA / "synthetic"
    return {
        "aiface1": syn / "aiface1" / "speech_512.mp4",
        "aiface2": syn / "aiface2" / "intro_512.mp4",
        "grid-a": SHARED_DATA / "grid" / "bbaf2n.mpg",
        "grid-b": SHARED_DATA / "grid" / "lbax4n.mpg",
    }[name]


def _other(person: str) -> str:
    return PEOPLE[1] if person == PEOPLE[0] else PEOPLE[0]


# ------------------------------------------------------------------------------ sources


class Clip:
    """Frames of one shared clip, read forward (restarting when asked for an earlier one), and
    the 68 landmarks of its one face per frame, detected on the untransformed frame once and
    cached as JSON in ``cache``."""

    def __init__(self, path: Path, cache: Path) -> None:
        from facedub.media.reader import open_media

        self.path = path
        self.reader = open_media(path)
        self.count = self.reader.frame_count
        self.cache_file = cache / f"{path.parent.name}-{path.stem}.landmarks.json"
        self._lm: dict[int, list[list[float]] | None] = {}
        if self.cache_file.exists():
            self._lm = {int(k): v for k, v in json.loads(self.cache_file.read_text())["frames"].items()}
        self._it: Iterator[Any] | None = None
        self._next = 0
        self._det: Any = None
        self._dirty = False

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= i < self.count:
            raise IndexError(f"{self.path}: frame {i} of {self.count}")
        if self._it is None or i < self._next:
            self._it = iter(self.reader.frames(start=i, threads=1))
        for f in self._it:
            self._next = f.index + 1
            if f.index == i:
                return f.rgb
        raise IndexError(f"{self.path}: frame {i} not decoded")

    def landmarks(self, i: int, rgb: np.ndarray) -> np.ndarray | None:
        if i not in self._lm:
            if self._det is None:
                from facedub.faces.detect import FaceDetector

                self._det = FaceDetector(video_mode=False, max_faces=1)
            faces = self._det.detect(rgb)
            self._lm[i] = None if not faces else np.round(faces[0].landmarks68, 2).tolist()
            self._dirty = True
        v = self._lm[i]
        return None if v is None else np.asarray(v, dtype=np.float64)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        rgb = self.frame(i)
        return rgb, self.landmarks(i, rgb)

    def median_landmarks(self, frames: range) -> np.ndarray:
        """Median landmarks over ``frames`` (for framing a shot once, like a fixed camera)."""
        pts = [lm for i in frames if (lm := self.get(i)[1]) is not None]
        if not pts:
            raise RuntimeError(f"{self.path}: no face found in frames {frames.start}–{frames.stop}")
        return np.median(np.stack(pts), axis=0)

    def close(self) -> None:
        if self._dirty:
            from facedub.fileio import write_json

            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.cache_file, {"path": str(self.path), "frames": {str(k): v for k, v in sorted(self._lm.items())}})
            self._dirty = False
        if self._det is not None:
            self._det.close()
            self._det = None


class Clips:
    """Open clips by name (see ``_clip``) for one generation."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._open: dict[str, Clip] = {}

    def __getitem__(self, name: str) -> Clip:
        if name not in self._open:
            self._open[name] = Clip(_clip(name), self.cache)
        return self._open[name]

    def close(self) -> None:
        for c in self._open.values():
            c.close()


# ------------------------------------------------------------------------------ pure transforms


def similarity(scale: float, angle_deg: float, src_center: np.ndarray, dst_center: np.ndarray) -> np.ndarray:
    """2×3 matrix: rotate by ``angle_deg`` (counter-clockwise on screen) and scale about
    ``src_center``, which lands on ``dst_center``."""
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    r = np.array([[c, s], [-s, c]])
    t = np.asarray(dst_center, dtype=np.float64) - r @ np.asarray(src_center, dtype=np.float64)
    return np.hstack([r, t[:, None]])


def apply_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def face_width(lm: np.ndarray) -> float:
    """The face's size as this suite counts it: the jaw span (landmark 0 to 16), in px."""
    return float(np.linalg.norm(lm[16] - lm[0]))


def face_center(lm: np.ndarray) -> np.ndarray:
    return lm[17:68].mean(axis=0)


def background(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth, face-free colour texture (low-frequency noise) for the parts no clip covers."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.uniform(70, 180, (6, 10, 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.uniform(-12, 12, (h // 16 + 1, w // 16 + 1, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(img + fine, 0, 255).astype(np.uint8)


def place(canvas: np.ndarray, src: np.ndarray, m: np.ndarray) -> None:
    """Draw ``src`` into ``canvas`` (in place) through the 2×3 source → canvas matrix ``m``.

    Strong reductions go through an area resize first, so small copies do not alias."""
    import cv2

    s = math.sqrt(abs(np.linalg.det(m[:, :2])))
    if s < 0.8:
        h, w = src.shape[:2]
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        src = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)
        pre = np.array([[w / nw, 0.0, 0.5 * w / nw - 0.5], [0.0, h / nh, 0.5 * h / nh - 0.5], [0.0, 0.0, 1.0]])
        m = m @ pre
    ch, cw = canvas.shape[:2]
    cv2.warpAffine(src, m, (cw, ch), dst=canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)


def exposure_lut(gains: tuple[float, float, float]) -> np.ndarray:
    """256×3 LUT: each channel multiplied by its gain in linear light (sRGB ≈ gamma 2.2), clipped."""
    x = np.arange(256, dtype=np.float64) / 255.0
    lin = x**2.2
    return np.stack([np.clip((lin * g) ** (1 / 2.2), 0, 1) * 255.0 + 0.5 for g in gains], axis=1).astype(np.uint8)


def apply_lut(rgb: np.ndarray, lut: np.ndarray) -> np.ndarray:
    out = np.empty_like(rgb)
    for c in range(3):
        out[..., c] = lut[rgb[..., c], c]
    return out


# ------------------------------------------------------------------------------ generation


class _Builder:
    """Collects frames into the input video and the ground truth into ``truth.json``."""

    def __init__(self, folder: Path, case: str, short: bool, size: tuple[int, int], target: str) -> None:
        from facedub.media.writer import VideoWriter

        self.folder = folder
        self.w, self.h = size
        self.truth: dict[str, Any] = {
            "case": case, "short": short, "width": self.w, "height": self.h, "fps": FPS, "target": target,
            "bystander": _other(target), "frames": [], "shots": [],
        }
        self.writer = VideoWriter(folder / "input.mp4", self.w, self.h, FPS, crf=INPUT_CRF)

    def shot(self, kind: str, label: str, **extra: Any) -> None:
        """Start a new shot (a hard cut) of ``kind`` target / other / empty."""
        self.truth["shots"].append({"start": len(self.truth["frames"]), "kind": kind, "label": label, **extra})

    def add(self, rgb: np.ndarray, faces: list[tuple[str, np.ndarray | None]], **extra: Any) -> None:
        assert rgb.shape == (self.h, self.w, 3), rgb.shape
        self.writer.write(rgb)
        rec = {"faces": [{"who": who, "lm": np.round(lm, 2).tolist()} for who, lm in faces if lm is not None], **extra}
        if self.truth["shots"]:
            rec["shot"] = len(self.truth["shots"]) - 1
        self.truth["frames"].append(rec)

    def close(self) -> Path:
        from facedub.fileio import write_json

        self.writer.close()
        for k, s in enumerate(self.truth["shots"]):
            nxt = self.truth["shots"][k + 1]["start"] if k + 1 < len(self.truth["shots"]) else len(self.truth["frames"])
            s["end"] = nxt
        write_json(self.folder / "truth.json", self.truth)
        return self.folder / "input.mp4"

    def abort(self) -> None:
        self.writer.abort()


def _who(name: str, target: str) -> str:
    if name == target:
        return "target"
    return "bystander" if name in PEOPLE else "other"


def _fit(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """Scale a whole source frame to fit ``dst`` (letterboxed, centred)."""
    sw, sh = src_wh
    dw, dh = dst_wh
    s = min(dw / sw, dh / sh)
    return np.array([[s, 0, (dw - sw * s) / 2], [0, s, (dh - sh * s) / 2]])


def gen_people(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    """Target and bystander side by side; they change places (a hard swap of the halves) mid-clip."""
    n = 16 if short else 200
    a, c = clips[target], clips[_other(target)]
    side = a.reader.width
    b.shot("target", "side by side")
    for i in range(n):
        left, right = (a, c) if i < n // 2 else (c, a)
        canvas = np.empty((b.h, b.w, 3), np.uint8)
        faces = []
        for clip, x0 in ((left, 0), (right, side)):
            rgb, lm = clip.get(i)
            canvas[:, x0 : x0 + side] = rgb
            name = target if clip is a else _other(target)
            faces.append((_who(name, target), None if lm is None else lm + (x0, 0)))
        b.add(canvas, faces, swapped_places=i >= n // 2)
    b.truth["places_swapped_at"] = n // 2


def _cuts_plan(short: bool, target: str) -> list[tuple[str, str, str, int, int, str]]:
    """(kind, clip, framing, first source frame, frames, label) per shot."""
    if short:
        k, flash = 6, 3
        return [
            ("target", target, "wide", 0, k, "target, wide"),
            ("other", "grid-a", "fit", 0, k, "GRID volunteer"),
            ("target", target, "close-right", 20, k, "target, close, right"),
            ("empty", "", "", 0, flash, "empty flash"),
            ("target", target, "close-right", 20 + k + flash, k, "target, same framing"),
            ("other", _other(target), "wide", 0, k, "bystander alone"),
            ("empty", "", "", 0, 4, "empty"),
            ("target", target, "wide", 60, k, "target, wide"),
        ]
    return [
        ("target", target, "wide", 0, 50, "target, wide"),
        ("other", "grid-a", "fit", 0, 40, "GRID volunteer"),
        ("target", target, "close-right", 100, 50, "target, close, right"),
        ("empty", "", "", 0, 4, "empty flash (4 frames)"),
        ("target", target, "close-right", 154, 46, "target, same framing"),
        ("other", _other(target), "wide", 0, 40, "bystander alone"),
        ("empty", "", "", 0, 25, "empty"),
        ("other", "grid-b", "fit", 0, 40, "another GRID volunteer"),
        ("target", target, "wide", 300, 50, "target, wide"),
    ]


def gen_cuts(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    bg_empty = background(b.w, b.h, 7)
    for kind, name, framing, first, n, label in _cuts_plan(short, target):
        b.shot(kind, label)
        if kind == "empty":
            for i in range(n):
                shift = int(i * b.w / 200)  # a slow pan over the empty scene
                b.add(np.ascontiguousarray(np.roll(bg_empty, shift, axis=1)), [])
            continue
        clip = clips[name]
        sw, sh = clip.reader.width, clip.reader.height
        if framing == "close-right":  # zoomed in, face centred at 70 % of the width
            med = clip.median_landmarks(range(first, first + n))
            s = 0.55 * b.h / face_width(med)
            m = similarity(s, 0.0, face_center(med), np.array([0.7 * b.w, 0.5 * b.h]))
        else:
            m = _fit((sw, sh), (b.w, b.h))
        bg = background(b.w, b.h, zlib.crc32(label.encode()) % 1000)
        for i in range(first, first + n):
            rgb, lm = clip.get(i)
            canvas = bg.copy()
            place(canvas, rgb, m)
            b.add(canvas, [(_who(name, target), None if lm is None else apply_points(m, lm))])


def motion_matrix(t: float, center: np.ndarray, base: float, canvas: tuple[int, int]) -> tuple[np.ndarray, dict[str, float]]:
    """Camera at time ``t`` (s): roll ±30°, zoom 0.6–1.4×, pan ±15 % / ±10 % of the frame."""
    w, h = canvas
    roll = 30.0 * math.sin(2 * math.pi * t / 4.0)
    zoom = 1.0 - 0.4 * math.sin(2 * math.pi * t / 5.3)
    pan = np.array([0.15 * w * math.sin(2 * math.pi * t / 3.1), 0.10 * h * math.sin(2 * math.pi * t / 4.7 + 1.3)])
    m = similarity(base * zoom, roll, center, np.array([w / 2, h / 2]) + pan)
    return m, {"roll": round(roll, 2), "zoom": round(zoom, 3), "pan_x": round(float(pan[0]), 1), "pan_y": round(float(pan[1]), 1)}


def gen_motion(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    n = 40 if short else 250
    clip = clips[target]
    center = face_center(clip.median_landmarks(range(0, n, max(1, n // 10))))
    width = face_width(clip.median_landmarks(range(0, n, max(1, n // 10))))
    base = 0.28 * b.h / width  # face ≈ 28 % of the frame height at zoom 1 (17–39 % over the zoom range)
    bg = background(b.w, b.h, 3)
    b.shot("target", "roll, zoom, pan")
    for i in range(n):
        t = i / FPS * (1.5 if short else 1.0)  # the short clip: the first 2.4 s of motion, 1.5× as fast (roll to 30°, zoom to 0.6)
        m, cam = motion_matrix(t, center, base, (b.w, b.h))
        rgb, lm = clip.get(i)
        canvas = bg.copy()
        place(canvas, rgb, m)
        b.add(canvas, [("target", None if lm is None else apply_points(m, lm))], camera=cam)


def gen_small(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    sizes = (SMALL_GOAL_PX, 60) if short else SMALL_SIZES
    n = 4 if short else 30
    clip = clips[target]
    bg = background(b.w, b.h, 5)
    first = 0
    for k, px in enumerate(sizes):
        med = clip.median_landmarks(range(first, first + n))
        s = px / face_width(med)
        spot = np.array([(0.3 + 0.4 * (k % 2)) * b.w, (0.4 + 0.15 * (k % 3)) * b.h])  # a new place per shot
        m = similarity(s, 0.0, face_center(med), spot)
        b.shot("target", f"{px} px face", face_px=px)
        for i in range(first, first + n):
            rgb, lm = clip.get(i)
            canvas = bg.copy()
            place(canvas, rgb, m)
            b.add(canvas, [("target", None if lm is None else apply_points(m, lm))], face_px=px)
        first += n


def gen_large(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    """A fixed crop in which the face's landmark box fills the frame (its jaw span ≈ 95 % of the width)."""
    n = 16 if short else 120
    clip = clips[target]
    med = clip.median_landmarks(range(0, n, max(1, n // 10)))
    s = 0.95 * b.w / face_width(med)
    m = similarity(s, 0.0, face_center(med), np.array([b.w / 2, 0.47 * b.h]))
    b.shot("target", "face filling the frame")
    for i in range(n):
        rgb, lm = clip.get(i)
        canvas = np.zeros((b.h, b.w, 3), np.uint8)
        place(canvas, rgb, m)
        b.add(canvas, [("target", None if lm is None else apply_points(m, lm))])


def gen_partial(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    """The clip pans left until about 60 % of the face is out of frame, and back."""
    n = 24 if short else 150
    clip = clips[target]
    med = clip.median_landmarks(range(0, n, max(1, n // 10)))
    width = face_width(med)
    s = 0.35 * b.h / width
    bg = background(b.w, b.h, 11)
    b.shot("target", "panning out of frame and back")
    for i in range(n):
        phase = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)  # 0 → 1 → 0
        x = (0.5 * b.w) * (1 - phase) + (-0.1 * width * s) * phase  # face centre from the middle to 10 % of a face left of the edge
        m = similarity(s, 0.0, face_center(med), np.array([x, 0.5 * b.h]))
        rgb, lm = clip.get(i)
        canvas = bg.copy()
        place(canvas, rgb, m)
        b.add(canvas, [("target", None if lm is None else apply_points(m, lm))])


def light_gains(i: int, n: int) -> tuple[float, float, float]:
    """First half: exposure ×0.5 → ×1.4; second half: white balance from warm to cold (R×1.25, B×0.75 → R×0.75, B×1.25)."""
    half = n // 2
    if i < half:
        g = 0.5 + 0.9 * i / max(1, half - 1)
        return (g, g, g)
    u = (i - half) / max(1, n - half - 1)
    r = 1.25 - 0.5 * u
    return (r, 1.0, 2.0 - r)


def gen_light(b: _Builder, clips: Clips, short: bool, target: str) -> None:
    n = 20 if short else 250
    clip = clips[target]
    b.shot("target", "exposure ramp, then white-balance shift")
    for i in range(n):
        rgb, lm = clip.get(i)
        g = light_gains(i, n)
        b.add(apply_lut(rgb, exposure_lut(g)), [("target", lm)], gains=[round(v, 3) for v in g], phase="exposure" if i < n // 2 else "white balance")


GENERATORS: dict[str, tuple[Callable[..., None], tuple[int, int], tuple[int, int]]] = {
    # case: (generator, full size, short size)
    "people": (gen_people, (1024, 512), (1024, 512)),
    "cuts": (gen_cuts, (640, 360), (640, 360)),
    "motion": (gen_motion, (854, 480), (640, 360)),
    "small": (gen_small, (1920, 1080), (1920, 1080)),
    "large": (gen_large, (720, 720), (512, 512)),
    "partial": (gen_partial, (640, 480), (640, 360)),
    "light": (gen_light, (512, 512), (512, 512)),
}


def generate(case: str, out_dir: str | os.PathLike[str], short: bool = False, target: str = "aiface1", cache: str | os.PathLike[str] | None = None) -> Path:
    """Build ``out_dir/case/input.mp4`` and its ``truth.json``; return the video's path.

    ``target`` is the person the model replaces (aiface1 or aiface2; the other one is the
    bystander). ``cache`` keeps the source clips' landmarks (default ``out_dir/cache``)."""
    if case not in GENERATORS:
        raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    if target not in PEOPLE:
        raise ValueError(f"target must be one of {PEOPLE}, got {target!r}")
    fn, full, small = GENERATORS[case]
    folder = Path(out_dir) / case
    folder.mkdir(parents=True, exist_ok=True)
    clips = Clips(Path(cache) if cache else Path(out_dir) / "cache")
    b = _Builder(folder, case, short, small if short else full, target)
    try:
        fn(b, clips, short, target)
        return b.close()
    except BaseException:
        b.abort()
        raise
    finally:
        clips.close()


# ------------------------------------------------------------------------------ measuring


def _hull_mask(pts: np.ndarray, shape: tuple[int, int], grow: float = 0.0) -> np.ndarray:
    """H×W bool: convex hull of ``pts`` (may reach outside the frame), grown by ``grow`` px."""
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts).astype(np.int32)), 1, lineType=cv2.LINE_8)
    if grow >= 1:
        k = int(round(grow))
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return m.astype(bool)


def _iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))


def inner_region(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The inner face: hull of brows, eyes, nose and mouth (no jaw line, no forehead)."""
    return _hull_mask(lm[17:68], shape)


def face_region(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The whole face generously: hull of the outline with forehead, grown by ¼ inter-ocular distance.
    Anything convert pastes for this face lies inside it."""
    from facedub.faces.align import face_outline

    return _hull_mask(face_outline(lm, 0.3), shape, 0.25 * _iod(lm))


def paste_zone(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Wider still (forehead 0.5, grown by ¾ inter-ocular distance): left out of the "nothing
    pasted elsewhere" region so detection noise and codec ringing at a swapped face's edge do not count."""
    from facedub.faces.align import face_outline

    return _hull_mask(face_outline(lm, 0.5), shape, 0.75 * _iod(lm))


def visible_share(lm: np.ndarray, w: int, h: int) -> float:
    """Share of the face hull's area that lies inside the frame."""
    import cv2

    from facedub.faces.align import face_outline

    hull = cv2.convexHull(face_outline(lm, 0.2).astype(np.float32))
    total = float(cv2.contourArea(hull))
    if total <= 0:
        return 0.0
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    inter, _ = cv2.intersectConvexConvex(hull, frame)
    return float(inter) / total


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    from facedub.evaluate import metrics as M

    v = M.psnr(a, b, mask)
    return None if math.isnan(v) else round(v, 2)


def _mean_lab(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    from facedub.convert.color import to_lab

    px = rgb[mask]
    if len(px) < 20:
        return None
    return to_lab(px[None]).reshape(-1, 3).astype(np.float64).mean(axis=0)


def _frames(path: Path) -> Iterator[np.ndarray]:
    from facedub.media.reader import open_media

    for f in open_media(path).frames(threads=1):
        yield f.rgb


def model_identities(meta: dict[str, Any] | None, reverse: bool = False) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(descriptor of the face put in, descriptor of the person replaced) from a model.json."""
    if not meta:
        return None, None

    def get(key: str) -> np.ndarray | None:
        v = meta.get(key)
        return None if v is None else np.asarray(v, dtype=np.float64)

    src, tgt = get("source_descriptor"), get("target_descriptor")
    return (tgt, src) if reverse else (src, tgt)


def measure(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    truth: dict[str, Any],
    *,
    source_descriptor: np.ndarray | None = None,
    jitter: bool = False,
) -> list[dict[str, Any]]:
    """Per-frame measurements of ``output`` against ``input`` in the ground-truth regions.

    Per face: PSNR of the inner face (→ swapped?) and of the whole face region (→ untouched?),
    the visible share and, for the target, the ΔE of the inner face's mean colour. Per frame:
    PSNR outside every face's paste zone (``rest``) and of the whole frame, both without the
    visible label. With ``source_descriptor``: every ``IDENTITY_EVERY``-th swapped target face
    gets identity distances (as ``facedub.evaluate`` measures them: to the source, and to the
    input's face in the same frame). With ``jitter``: the landmarks re-detected in both videos
    near the target (for the landmark jitter)."""
    from facedub.evaluate import metrics as M
    from facedub.safety.label import Labeler

    w, h = truth["width"], truth["height"]
    ys, xs = Labeler().box(h, w)
    keep = np.ones((h, w), bool)
    keep[max(0, ys.start - 4) : ys.stop + 4, max(0, xs.start - 4) : xs.stop + 4] = False
    enc = det = None
    if source_descriptor is not None:
        from facedub.faces.identity import IdentityEncoder

        enc = IdentityEncoder()
    if jitter:
        from facedub.faces.detect import FaceDetector

        det = FaceDetector(video_mode=False, max_faces=4)
    recs: list[dict[str, Any]] = []
    n_swapped = 0
    try:
        fi, fo = _frames(Path(input)), _frames(Path(output))
        for k, gt in enumerate(truth["frames"]):
            a, b = next(fi, None), next(fo, None)
            if a is None or b is None:
                raise ValueError(f"{output if b is None else input}: ends after {k} frames; the truth has {len(truth['frames'])}")
            rest = keep.copy()
            faces = []
            for face in gt["faces"]:
                lm = np.asarray(face["lm"], dtype=np.float64)
                inner = inner_region(lm, (h, w)) & keep
                region = face_region(lm, (h, w)) & keep
                rest &= ~paste_zone(lm, (h, w))
                rec: dict[str, Any] = {
                    "who": face["who"],
                    "width": round(face_width(lm), 1),
                    "visible": round(visible_share(lm, w, h), 3),
                    "inner_psnr": _psnr(a, b, inner),
                    "face_psnr": _psnr(a, b, region),
                }
                ip = rec["inner_psnr"]
                rec["swapped"] = ip is not None and ip < SWAPPED_DB
                if face["who"] == "target":
                    la, lb = _mean_lab(a, inner), _mean_lab(b, inner)
                    rec["delta_e"] = None if la is None or lb is None else round(float(np.linalg.norm(lb - la)), 3)
                    if enc is not None and rec["swapped"]:
                        if n_swapped % IDENTITY_EVERY == 0:
                            d_out, d_in = enc.descriptor(b, lm), enc.descriptor(a, lm)
                            rec["dist_source"] = round(M.descriptor_distance(d_out, source_descriptor), 4)
                            rec["dist_target"] = round(M.descriptor_distance(d_out, d_in), 4)
                            rec["input_dist_source"] = round(M.descriptor_distance(d_in, source_descriptor), 4)
                            rec["reads_as_source"] = M.reads_as_source(rec["dist_source"], rec["dist_target"])
                        n_swapped += 1
                    if det is not None:
                        rec["lm_in"], rec["lm_out"] = _nearest_landmarks(det, a, lm), _nearest_landmarks(det, b, lm)
                faces.append(rec)
            recs.append({"index": k, "shot": gt.get("shot"), "faces": faces, "rest_psnr": _psnr(a, b, rest), "frame_psnr": _psnr(a, b, keep)})
        extra = sum(1 for _ in fo)
        if extra:
            raise ValueError(f"{output}: {extra} frame(s) more than the truth's {len(truth['frames'])}")
    finally:
        if det is not None:
            det.close()
    return recs


def _nearest_landmarks(det: Any, rgb: np.ndarray, lm: np.ndarray) -> list[list[float]] | None:
    """Landmarks of the detected face overlapping the ground-truth face most (IoU ≥ 0.3), or None."""
    from facedub.evaluate.core import _iou

    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    box = (float(x0), float(y0), float(x1), float(y1))
    best = max(det.detect(rgb), key=lambda f: _iou(f.bbox, box), default=None)
    if best is None or _iou(best.bbox, box) < 0.3:
        return None
    return np.round(best.landmarks68, 2).tolist()


def landmark_jitter(recs: list[dict[str, Any]]) -> tuple[float | None, float | None, int]:
    """(output jitter, input jitter, triples): mean second difference of the re-detected target
    landmarks over three consecutive frames of one shot, in the input face's inter-ocular
    distances — ``facedub.evaluate``'s landmark jitter."""
    from facedub.evaluate import metrics as M

    def tgt(r: dict[str, Any]) -> dict[str, Any] | None:
        return next((f for f in r["faces"] if f["who"] == "target"), None)

    jo, ji = [], []
    for p, c, n in zip(recs, recs[1:], recs[2:]):
        if not (p["shot"] == c["shot"] == n["shot"]):
            continue
        f = [tgt(r) for r in (p, c, n)]
        if any(x is None or x.get("lm_in") is None or x.get("lm_out") is None for x in f):
            continue
        iod = _iod(np.asarray(f[1]["lm_in"]))
        if iod <= 1e-6:
            continue
        jo.append(M.second_difference_jitter(*(np.asarray(x["lm_out"]) for x in f), iod))  # type: ignore[union-attr]
        ji.append(M.second_difference_jitter(*(np.asarray(x["lm_in"]) for x in f), iod))  # type: ignore[union-attr]
    if not jo:
        return None, None, 0
    return float(np.mean(jo)), float(np.mean(ji)), len(jo)


# ------------------------------------------------------------------------------ checking


def _cond(name: str, value: float | None, goal: str, met: bool | None, detail: str = "", identity: bool = False) -> dict[str, Any]:
    return {"name": name, "value": value, "goal": goal, "met": met, "detail": detail, "needs_trained_model": identity}


def _target(rec: dict[str, Any]) -> dict[str, Any] | None:
    return next((f for f in rec["faces"] if f["who"] == "target"), None)


def _untouched(name: str, values: list[float | None], what: str) -> dict[str, Any]:
    v = [x for x in values if x is not None]
    low = sum(1 for x in v if x < UNTOUCHED_DB)
    m = min(v) if v else None
    detail = f"min {m:.1f} dB, mean {np.mean(v):.1f} dB over {len(v)} {what}; {low} below {UNTOUCHED_DB:g} dB" if v else f"no {what}"
    return _cond(name, None if m is None else round(m, 2), f"≥ {UNTOUCHED_DB:g} dB", None if m is None else m >= UNTOUCHED_DB, detail)


def _missed(name: str, faces: list[dict[str, Any]], what: str = "frames with the target in view") -> dict[str, Any]:
    if not faces:
        return _cond(name, None, f"≤ {MAX_MISSED:.0%}", None, f"no {what}")
    miss = sum(1 for f in faces if not f["swapped"])
    share = miss / len(faces)
    return _cond(name, round(share, 4), f"≤ {MAX_MISSED:.0%}", share <= MAX_MISSED, f"{miss} of {len(faces)} {what} not swapped")


def _identity(faces: list[dict[str, Any]], quality: bool, label: str = "identity transfer (reads as the source)") -> list[dict[str, Any]]:
    if not quality:
        return []
    s = [f for f in faces if "reads_as_source" in f]
    if not s:
        return [_cond(label, None, f"≥ {MIN_SOURCE_SHARE:.0%}", None, "no swapped frame sampled", identity=True)]
    share = float(np.mean([f["reads_as_source"] for f in s]))
    ds = np.mean([f["dist_source"] for f in s])
    dt = np.mean([f["dist_target"] for f in s])
    base = np.mean([f["input_dist_source"] for f in s])
    return [
        _cond(label, round(share, 4), f"≥ {MIN_SOURCE_SHARE:.0%}", share >= MIN_SOURCE_SHARE,
              f"{len(s)} sampled frames; distance to source {ds:.2f}, to the input face {dt:.2f} (input ↔ source {base:.2f})", identity=True)
    ]


def _delta_e(name: str, faces: list[dict[str, Any]]) -> dict[str, Any]:
    v = [f["delta_e"] for f in faces if f.get("delta_e") is not None and f["swapped"]]
    if not v:
        return _cond(name, None, f"≤ {MAX_DELTA_E:g}", None, "no swapped frame")
    m = float(np.mean(v))
    return _cond(name, round(m, 3), f"≤ {MAX_DELTA_E:g}", m <= MAX_DELTA_E, f"mean over {len(v)} swapped frames; p95 {np.percentile(v, 95):.2f}, max {max(v):.2f}")


def _check_people(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    at = truth["places_swapped_at"]
    bys = [f["face_psnr"] for r in recs for f in r["faces"] if f["who"] == "bystander"]
    tg = [(r["index"], _target(r)) for r in recs]
    tg = [(i, f) for i, f in tg if f is not None]
    settled = [f for i, f in tg if not (at <= i < at + REACQUIRE_FRAMES)]
    after = [i for i, f in tg if i >= at and f["swapped"]]
    gap = (after[0] - at) if after else None
    return [
        _untouched("bystander's face untouched", bys, "frames"),
        _missed("target swapped (outside the frames just after the swap of places)", settled),
        _cond("target found again after the swap of places", gap, f"≤ {REACQUIRE_FRAMES} frames",
              None if not tg else (gap is not None and gap <= REACQUIRE_FRAMES),
              "never swapped again" if gap is None else f"first swapped frame {gap} frame(s) after the change"),
        _untouched("nothing pasted elsewhere", [r["rest_psnr"] for r in recs], "frames"),
        *_identity([f for _, f in tg], quality),
    ]


def _check_cuts(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    shots = truth["shots"]
    conds = []
    by_kind: dict[str, list[float | None]] = {"other": [], "empty": []}
    for s in shots:
        if s["kind"] in by_kind:
            by_kind[s["kind"]] += [r["frame_psnr"] for r in recs[s["start"] : s["end"]]]
    conds.append(_untouched("other people's shots untouched (whole frame)", by_kind["other"], "frames"))
    conds.append(_untouched("empty shots untouched (whole frame)", by_kind["empty"], "frames"))
    lat, late, tg_settled = [], [], []
    for k, s in enumerate(shots):
        if s["kind"] != "target":
            continue
        fr = [_target(r) for r in recs[s["start"] : s["end"]]]
        first = next((i for i, f in enumerate(fr) if f is not None and f["swapped"]), None)
        lat.append(first)
        if first is None or first > PICKUP_FRAMES:
            late.append(f"shot {k + 1} ({s['label']}): {'never' if first is None else f'frame {first}'}")
        tg_settled += [f for f in fr[PICKUP_FRAMES + 1 :] if f is not None]
    worst = None if any(x is None for x in lat) else max(lat, default=None)
    conds.append(_cond("target picked up in the first frames of each target shot", worst if worst is not None else None,
                       f"≤ {PICKUP_FRAMES} frames", (worst is not None and worst <= PICKUP_FRAMES) if lat else None,
                       ("first swapped frame per target shot: " + ", ".join("never" if x is None else str(x) for x in lat))
                       + (f"; late: {'; '.join(late)}" if late else "")))
    conds.append(_missed("target swapped within its shots (after the pickup frames)", tg_settled))
    early = [r["rest_psnr"] for s in shots[1:] for r in recs[s["start"] : s["start"] + AFTER_CUT_FRAMES]]
    conds.append(_untouched(f"nothing of the previous shot after a cut (first {AFTER_CUT_FRAMES} frames, outside the shot's faces)", early, "frames"))
    conds += _identity([f for r in recs if (f := _target(r)) is not None], quality)
    return conds


def _check_jitter(recs: list[dict[str, Any]]) -> dict[str, Any]:
    jo, ji, n = landmark_jitter(recs)
    if jo is None or ji is None or ji <= 0:
        return _cond("landmark jitter, output / input", None, f"≤ {JITTER_RATIO:g}×", None, "too few frames with a face in both videos", identity=True)
    r = jo / ji
    return _cond("landmark jitter, output / input", round(r, 3), f"≤ {JITTER_RATIO:g}×", r <= JITTER_RATIO,
                 f"{jo:.4f} / {ji:.4f} inter-ocular distances over {n} frame triples", identity=True)


def _in_view(recs: list[dict[str, Any]], min_visible: float = 0.999) -> list[dict[str, Any]]:
    return [f for r in recs if (f := _target(r)) is not None and f["visible"] >= min_visible]


def _check_motion(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    c = [_missed("frames without a swap", _in_view(recs)), _untouched("nothing pasted elsewhere", [r["rest_psnr"] for r in recs], "frames")]
    if quality:
        c.append(_check_jitter(recs))
    return c + _identity(_in_view(recs), quality)


def _check_small(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    per = []
    handled = []
    goal = None
    for s in truth["shots"]:
        fr = [f for r in recs[s["start"] : s["end"]] if (f := _target(r)) is not None]
        c = _missed(f"{s['face_px']} px face in {truth['width']}×{truth['height']}: frames without a swap", fr)
        per.append(f"{s['face_px']} px: {c['detail']}")
        if c["met"]:
            handled.append(s["face_px"])
        if s["face_px"] == SMALL_GOAL_PX:
            goal = c
    conds = [goal] if goal else []
    smallest = min(handled) if handled else None
    conds.append(_cond("smallest face width handled (≤ 2 % frames missed)", smallest, "report", None, "; ".join(per)))
    conds.append(_untouched("nothing pasted elsewhere", [r["rest_psnr"] for r in recs], "frames"))
    goal_shot = next((s for s in truth["shots"] if s.get("face_px") == SMALL_GOAL_PX), None)
    if goal_shot:
        conds += _identity([f for r in recs[goal_shot["start"] : goal_shot["end"]] if (f := _target(r)) is not None], quality,
                           f"identity transfer at {SMALL_GOAL_PX} px")
    return conds


def _check_large(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    faces = [f for r in recs if (f := _target(r)) is not None]
    c = [_missed("frames without a swap (face filling the frame)", faces)]
    if quality:
        c.append(_check_jitter(recs))
    return c + _identity(faces, quality)


def _check_partial(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    faces = [f for r in recs if (f := _target(r)) is not None]
    bins = [(1.0, 1.01), (0.8, 1.0), (0.6, 0.8), (0.0, 0.6)]
    parts = []
    for lo, hi in bins:
        b = [f for f in faces if lo <= f["visible"] < hi]
        if b:
            parts.append(f"{lo:.0%}–{min(hi, 1):.0%} in view: {sum(f['swapped'] for f in b)}/{len(b)} swapped")
    mostly = [f for f in faces if f["visible"] >= PARTIAL_VISIBLE]
    c = [
        _missed(f"frames without a swap (≥ {PARTIAL_VISIBLE:.0%} of the face in view)", mostly, "frames"),
        _cond("swapped frames by share of the face in view", None, "report", None, "; ".join(parts)),
        _untouched("nothing pasted elsewhere", [r["rest_psnr"] for r in recs], "frames"),
    ]
    return c + _identity(mostly, quality)


def _check_light(truth: dict[str, Any], recs: list[dict[str, Any]], quality: bool) -> list[dict[str, Any]]:
    faces = [(truth["frames"][r["index"]].get("phase"), f) for r in recs if (f := _target(r)) is not None]
    c = [_missed("frames without a swap", [f for _, f in faces])]
    for phase in ("exposure", "white balance"):
        c.append(_delta_e(f"inner face colour follows the frame ({phase}): mean ΔE", [f for p, f in faces if p == phase]))
    return c + _identity([f for _, f in faces], quality)


CHECKS: dict[str, Callable[[dict[str, Any], list[dict[str, Any]], bool], list[dict[str, Any]]]] = {
    "people": _check_people, "cuts": _check_cuts, "motion": _check_motion, "small": _check_small,
    "large": _check_large, "partial": _check_partial, "light": _check_light,
}


def check(
    case: str,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    truth: dict[str, Any] | str | os.PathLike[str] | None = None,
    *,
    model_meta: dict[str, Any] | None = None,
    reverse: bool = False,
    quality: bool = False,
) -> dict[str, Any]:
    """Check the issue's conditions for ``case`` on a converted ``output`` of the generated ``input``.

    ``truth`` is the generator's truth (a dict or a path; default: ``truth.json`` beside the
    input). ``quality=True`` adds identity transfer (needs ``model_meta`` with the model's
    source descriptor) and landmark jitter — conditions only a trained model can meet.
    Returns ``{"case", "conditions": [...], "ok", "frames"}``; each condition has ``name``,
    ``value``, ``goal``, ``met`` (True / False / None = not measurable here) and ``detail``.
    """
    if case not in CHECKS:
        raise ValueError(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    if truth is None:
        truth = Path(input).with_name("truth.json")
    if not isinstance(truth, dict):
        truth = json.loads(Path(truth).read_text())
    src, _ = model_identities(model_meta, reverse)
    jitter = quality and case in ("motion", "large")
    recs = measure(input, output, truth, source_descriptor=src if quality else None, jitter=jitter)
    conds = CHECKS[case](truth, recs, quality)
    judged = [c for c in conds if c["met"] is not None]
    return {"case": case, "conditions": conds, "ok": all(c["met"] for c in judged), "frames": recs}


# ------------------------------------------------------------------------------ suite


def person_of(meta: dict[str, Any], work: Path, reverse: bool = False) -> str:
    """Which of the shared pair the model replaces: the one closer to its target descriptor."""
    from facedub.faces.identity import IdentityEncoder

    _, tgt = model_identities(meta, reverse)
    if tgt is None:
        raise SystemExit("the model has no target descriptor; pass --target aiface1 or aiface2")
    enc = IdentityEncoder()
    dist = {}
    for name in PEOPLE:
        clip = Clip(_clip(name), work / "cache")
        try:
            ds = [enc.descriptor(rgb, lm) for i in range(0, 100, 20) if (lm := (g := clip.get(i))[1]) is not None for rgb in (g[0],)]
        finally:
            clip.close()
        dist[name] = float(np.linalg.norm(np.mean(ds, axis=0) - tgt))
    return min(dist, key=dist.__getitem__)


def run_case(case: str, work: Path, model: Any, *, short: bool, target: str, quality: bool, reuse: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from facedub.convert import ConvertConfig, convert_video

    folder = work / case
    inp, truth_file, out = folder / "input.mp4", folder / "truth.json", folder / "output.mp4"
    t = time.perf_counter()
    if not (reuse and inp.exists() and truth_file.exists()):
        generate(case, work, short=short, target=target)
    t_gen = time.perf_counter() - t
    truth = json.loads(truth_file.read_text())
    t = time.perf_counter()
    summary: dict[str, Any] = {}
    if not (reuse and out.exists()):
        s = convert_video(inp, model, out, ConvertConfig())
        summary = {"frames": s.frames, "swapped": s.swapped, "bridged": s.bridged, "no_face": s.no_face, "fps": round(s.frames_per_second, 1), "warnings": list(s.warnings)}
    t_conv = time.perf_counter() - t
    t = time.perf_counter()
    res = check(case, inp, out, truth, model_meta=getattr(model, "meta", None), quality=quality)
    t_check = time.perf_counter() - t
    tf = [f for r in res["frames"] if (f := _target(r)) is not None]
    res.update({"size": [truth["width"], truth["height"]], "n_frames": len(truth["frames"]), "convert": summary,
                "pixel_swapped": sum(f["swapped"] for f in tf), "target_frames": len(tf),
                "seconds": {"generate": round(t_gen, 1), "convert": round(t_conv, 1), "check": round(t_check, 1)}})
    from facedub.fileio import write_json

    write_json(folder / "check.json", res)
    for c in res["conditions"]:
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[c["met"]]
        log(f"  {mark} {c['name']}: {c['value']} (goal {c['goal']}) {c['detail']}")
    return res


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v)


def render(results: dict[str, dict[str, Any]], meta: dict[str, Any], info: dict[str, Any]) -> str:
    lines = [
        "Clips built from `../shared/data` by known transforms (`bench/robustness.py`, ground truth carried through "
        "the transforms), converted with the default `ConvertConfig`, checked against the issue-17 conditions. "
        f"Target person: {info['target']} (the model's target); bystander: {_other(info['target'])}; "
        "other people: GRID volunteers. Swapped = inner-face PSNR (output vs input) < "
        f"{SWAPPED_DB:g} dB; untouched = ≥ {UNTOUCHED_DB:g} dB; the visible label is left out of every region.",
        "",
        f"- Model: `{info['model']}` ({meta.get('arch', '?')}, step {meta.get('step', '?')}, "
        f"{float(meta.get('elapsed_s') or 0) / 60:.0f} training minutes); {info['mode']}.",
        f"- Convert code: commit {info.get('commit', '?')} plus the working tree at run time (helpers editing convert concurrently); "
        f"`ConvertConfig()` defaults then: {info.get('config', '?')}.",
        "",
        "| case | input | condition | goal | measured | met |",
        "|---|---|---|---|---|---|",
    ]
    n_met = n_judged = 0
    for case in CASES:
        r = results.get(case)
        if r is None:
            continue
        size = f"{r['size'][0]}×{r['size'][1]}, {r['n_frames']} fr"
        if r.get("error"):
            lines.append(f"| {case} | {size} | **error** | | {r['error']} | no |")
            continue
        for c in r["conditions"]:
            met = {True: "yes", False: "**no**", None: "—"}[c["met"]]
            if c["met"] is not None:
                n_judged += 1
                n_met += bool(c["met"])
            meas = _fmt(c["value"]) + (f" ({c['detail']})" if c["detail"] else "")
            lines.append(f"| {case} | {size} | {c['name']} | {c['goal']} | {meas} | {met} |")
    lines.append("")
    lines.append(f"{n_met} of {n_judged} judged conditions met.")
    lines.append("")
    lines.append(
        "Frames convert counted as swapped (its summary) against frames whose target face the pixels show replaced "
        "(a difference means convert reported a swap that left the face as it was, or the reverse), and convert's speed:"
    )
    lines.append("")
    for c, r in results.items():
        cv = r.get("convert") or {}
        if not cv:
            continue
        px = r.get("pixel_swapped")
        lines.append(f"- {c}: convert {cv.get('swapped', '?')} of {cv.get('frames', '?')}; pixels {px if px is not None else '?'} "
                     f"(frames with the target in view: {r.get('target_frames', '?')}); {cv.get('fps', '?')} frames/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model folder (its target person is the suite's target)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--short", action="store_true", help="the short versions the tests run (same frame sizes, few frames)")
    ap.add_argument("--target", choices=(*PEOPLE, "auto"), default="auto", help="the person the model replaces (auto: from its target descriptor)")
    ap.add_argument("--work", default=None, help="work folder (default runs/robustness or runs/robustness-short)")
    ap.add_argument("--no-quality", action="store_true", help="skip identity and jitter (for untrained models)")
    ap.add_argument("--reuse", action="store_true", help="keep inputs and outputs that exist (check again only)")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args(argv)

    if not (SHARED_DATA / "synthetic").is_dir():
        print(f"{SHARED_DATA}: shared media not found; nothing to do", file=sys.stderr)
        return 2
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad:
        print(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else REPO / "runs" / ("robustness-short" if args.short else "robustness")
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    from facedub.model import load_model

    model = load_model(args.model, "cpu")
    target = person_of(model.meta, work) if args.target == "auto" else args.target
    log(f"model {args.model}: target person {target}; work folder {work}; cases {', '.join(cases)}")
    results: dict[str, dict[str, Any]] = {}
    quality = not args.no_quality
    for case in cases:
        log(f"{case}: generate, convert, check")
        try:
            results[case] = run_case(case, work, model, short=args.short, target=target, quality=quality, reuse=args.reuse, log=log)
        except Exception as e:  # one broken case must not hide the others' figures
            log(f"  ERROR {type(e).__name__}: {e}")
            results[case] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", "size": list(GENERATORS[case][2 if args.short else 1]), "n_frames": 0, "conditions": [], "convert": {}}
    from facedub.fileio import write_json

    write_json(work / "results.json", {k: {kk: vv for kk, vv in v.items() if kk != "frames"} for k, v in results.items()})
    if not args.no_write:
        import subprocess

        from bench._common import write_section

        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        from dataclasses import asdict

        from facedub.convert import ConvertConfig

        cfg = asdict(ConvertConfig())
        shown = ("mask", "occlusion", "color", "color_smoothing", "smooth", "max_gap", "identity_every", "max_distance", "cut_threshold", "precision")
        info = {"target": target, "model": args.model, "commit": commit, "config": ", ".join(f"{k}={cfg[k]}" for k in shown if k in cfg),
                "mode": "short versions (a quick look, not the benchmark)" if args.short else "full versions"}
        write_section("robustness", "Robustness on transformed footage (issue 17)", render(results, model.meta, info))
        log("wrote the robustness section of BENCHMARKS.md")
    judged = [c for r in results.values() for c in r["conditions"] if c["met"] is not None]
    log(f"done: {sum(bool(c['met']) for c in judged)} of {len(judged)} judged conditions met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
