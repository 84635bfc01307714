"""Occlusion: which pixels of the aligned face are the face itself, and which are in front of it.

A tiny U-Net looks at the aligned face (``SEG_COVERAGE`` of the 256 px crop, ``SEG_SIZE`` px)
and gives, per pixel, the probability that the face is visible there: inside the face outline
and not behind a hand, a microphone, a glasses frame or a strand of hair. Convert multiplies
its paste mask by it, so what is in front of the face stays in front.

It needs no hand labelling. Training pastes synthetic occluders onto aligned face crops —
shapes with random textures, patches of other crops, hand and finger silhouettes in skin
tones, thin glasses frames, hair-like strands, semi-transparent objects — and the known
visible-face mask (the face outline minus the occluder) is the target. The occluder synthesis
is a set of pure, seeded numpy/OpenCV functions; :func:`train_occlusion` fits the network;
``bench/train_occlusion.py`` trains the generic model shipped in ``weights/`` from the shared
test faces, and :func:`load_occlusion` loads it (safetensors, no pickle).
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from facedub.faces.align import CROP_SIZE, compose, crop_to_model_matrix, face_outline, inner_cut, resize_to_model, transform_points, warp

SEG_SIZE = 64  # the network's input side in pixels
SEG_COVERAGE = 0.875  # share of the 256 px aligned crop it sees (chin and forehead included)
SYNTH_SCALE = 2  # occluders are drawn at this multiple of SEG_SIZE, then area-scaled down (soft, anti-aliased edges)
FACE_FOREHEAD = 0.3  # the face outline of the target reaches this share of chin-to-brow above the brows
FACE_GROW = 0.03  # ... and is grown by this share of the crop, so its soft edge lies outside convert's paste hull
MIN_VISIBLE = 0.3  # a map that calls less than this share of the landmark outline visible is not trusted (see readable)
OPAQUE_FROM = 0.35  # occluder opacity from which a pixel counts as hidden (a faint tint or a clear lens does not)
CLEAR_BELOW = 0.15  # ... and below which it counts as visible; linear in between
WEIGHTS = Path(__file__).with_name("weights") / "occlusion.safetensors"  # the generic model shipped with facedub
PROJECT_WEIGHTS = "occlusion.safetensors"  # a model folder's own (fine-tuned) occlusion model, used instead when present
FORMAT = "facedub-occlusion-v1"

Image = np.ndarray


# ---------------------------------------------------------------------------------------
# Geometry of the segmentation crop
# ---------------------------------------------------------------------------------------
def seg_matrix(frame_to_crop: np.ndarray, size: int = SEG_SIZE, coverage: float = SEG_COVERAGE) -> np.ndarray:
    """2×3 frame → segmentation-input matrix (pixel-centre exact for :func:`seg_input`)."""
    lo, hi = inner_cut(coverage)
    s = size / (hi - lo)
    t = (0.5 - lo) * s - 0.5
    return compose(np.array([[s, 0.0, t], [0.0, s, t]]), frame_to_crop)


def seg_input(rgb: Image, frame_to_crop: np.ndarray, size: int = SEG_SIZE, coverage: float = SEG_COVERAGE) -> tuple[Image, np.ndarray]:
    """The network's input for the face aligned by ``frame_to_crop``: (uint8 S×S×3, frame → input matrix).

    Cut as ``crop_to_model`` cuts a stored crop: the kept part of the 256 px crop is warped at
    the crop's resolution, then area-scaled to ``size`` (no aliasing when the face is large).
    """
    lo, hi = inner_cut(coverage)
    shifted = np.asarray(frame_to_crop, dtype=np.float64).copy()
    shifted[:, 2] -= lo
    x = resize_to_model(warp(rgb, shifted, hi - lo), size)
    return np.ascontiguousarray(x), seg_matrix(frame_to_crop, size, coverage)


def visible_in(visible: np.ndarray, frame_to_seg: np.ndarray, frame_to_model: np.ndarray, size: int) -> np.ndarray:
    """The visible-face map resampled into a ``size`` px model square (outside the map: visible)."""
    import cv2

    from facedub.faces.align import invert_affine

    m = compose(frame_to_model, invert_affine(frame_to_seg))
    return cv2.warpAffine(np.asarray(visible, np.float32), m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)


def visible_share(visible: np.ndarray, outline_seg: np.ndarray) -> float:
    """The share of the face outline (points in the map's pixels) that ``visible`` calls visible."""
    import cv2

    h, w = visible.shape[:2]
    inside = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(inside, cv2.convexHull(np.round(np.asarray(outline_seg) * 16).astype(np.int32)), 1, lineType=cv2.LINE_8, shift=4)
    n = int(inside.sum())
    return 1.0 if n == 0 else float((np.asarray(visible)[inside > 0] >= 0.5).sum() / n)


def readable(visible: np.ndarray, outline_seg: np.ndarray) -> bool:
    """Whether the map is trusted for this face: it calls at least ``MIN_VISIBLE`` of the outline visible.

    A face the network cannot read at all (a drawing, a synthetic test pattern, extreme
    lighting) would otherwise come out as "all hidden" and nothing would be swapped; there the
    landmark mask alone decides, as with occlusion off. The price: a face more than about
    70 % covered is pasted over (the detector rarely finds such a face anyway).
    """
    return visible_share(visible, outline_seg) >= MIN_VISIBLE


def face_target(lm_crop: np.ndarray, side: int, coverage: float = SEG_COVERAGE) -> np.ndarray:
    """The face region (float32 side×side, 0/1) the network learns, from 68 landmarks in 256-crop pixels.

    The convex hull of :func:`face_outline` with ``FACE_FOREHEAD``, grown by ``FACE_GROW`` of the
    crop: a little larger than convert's paste hull, so only occluders, not the network's own
    idea of the face's edge, cut into what is pasted.
    """
    import cv2

    m = crop_to_model_matrix(coverage, side)
    pts = transform_points(face_outline(lm_crop, FACE_FOREHEAD), m)
    out = np.zeros((side, side), np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(np.round(pts * 16).astype(np.int32)), 255, lineType=cv2.LINE_AA, shift=4)
    grow = int(round(FACE_GROW * CROP_SIZE * m[0, 0]))
    if grow > 0:
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return out.astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------
# Occluder synthesis (pure: every function draws from the Generator it is given)
# ---------------------------------------------------------------------------------------
# Skin tones (RGB) from pale to deep; a hand takes one of them, or the face's own colour.
SKIN_TONES = np.array(
    [[255, 224, 196], [241, 194, 160], [224, 172, 140], [198, 134, 100], [170, 112, 80], [141, 85, 56], [110, 66, 42], [80, 50, 35]],
    dtype=np.float32,
)
HAIR_TONES = np.array([[20, 16, 14], [50, 35, 25], [90, 60, 35], [140, 100, 60], [200, 170, 120], [120, 120, 120], [160, 60, 30]], dtype=np.float32)
FRAME_TONES = np.array([[10, 10, 10], [40, 30, 25], [90, 60, 30], [180, 150, 80], [190, 190, 195], [120, 20, 20], [30, 40, 90]], dtype=np.float32)


def smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [0, 1]: ``cells``² random values scaled up bicubically."""
    import cv2

    g = rng.random((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)
    out = out.reshape(size, size, channels)
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def random_texture(rng: np.random.Generator, size: int, others: Sequence[Image] = ()) -> np.ndarray:
    """A float32 size×size×3 texture in [0, 255]: solid, gradient, noise, stripes, checks or a piece of another image."""
    import cv2

    kind = int(rng.integers(0, 7 if len(others) else 6))
    base = rng.uniform(0, 255, 3).astype(np.float32)
    if kind == 0:  # solid
        tex = np.broadcast_to(base, (size, size, 3)).copy()
    elif kind == 1:  # linear gradient between two colours
        other = rng.uniform(0, 255, 3).astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        t = np.clip((np.cos(a) * xx + np.sin(a) * yy - 0.5 * (np.cos(a) + np.sin(a))) + 0.5, 0, 1)[..., None]
        tex = base * (1 - t) + other * t
    elif kind == 2:  # coloured low-frequency noise
        n = smooth_noise(rng, size, int(rng.integers(2, 12)), 3)
        tex = base * 0.4 + n * rng.uniform(60, 160)
    elif kind == 3:  # stripes
        other = rng.uniform(0, 255, 3).astype(np.float32)
        period = rng.uniform(3, 20)
        a = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        t = (np.sin((np.cos(a) * xx + np.sin(a) * yy) * 2 * math.pi / period) > 0).astype(np.float32)[..., None]
        tex = base * (1 - t) + other * t
    elif kind == 4:  # checks
        other = rng.uniform(0, 255, 3).astype(np.float32)
        c = int(rng.integers(3, 16))
        yy, xx = np.mgrid[0:size, 0:size]
        t = (((yy // c) + (xx // c)) % 2).astype(np.float32)[..., None]
        tex = base * (1 - t) + other * t
    elif kind == 5:  # shaded solid: a lit object
        n = smooth_noise(rng, size, 2)
        tex = base * (0.5 + 0.7 * n)
    else:  # a piece of another image's top band (hair, background: no face texture), scaled up
        src = np.asarray(others[int(rng.integers(0, len(others)))], dtype=np.float32)
        src = _top_band(src)
        k = rng.uniform(0.7, 1.6)
        src = cv2.resize(src, (max(size, int(src.shape[1] * k)), max(size, int(src.shape[0] * k))), interpolation=cv2.INTER_LINEAR)
        y0 = int(rng.integers(0, src.shape[0] - size + 1))
        x0 = int(rng.integers(0, src.shape[1] - size + 1))
        tex = src[y0 : y0 + size, x0 : x0 + size, :3].copy()
    if rng.random() < 0.5:  # grain
        tex = tex + rng.normal(0, rng.uniform(2, 12), tex.shape).astype(np.float32)
    return np.clip(tex, 0, 255).astype(np.float32)


def _top_band(image: np.ndarray) -> np.ndarray:
    """The top quarter of an aligned crop (above the brows: hair, background), stretched to a square.

    Patches of other crops are cut from here only: a piece of another *face* pasted as an
    occluder teaches the network that face texture may be hidden, and it then doubts real faces.
    """
    import cv2

    n = image.shape[0]
    band = image[: max(4, n // 4)]
    return cv2.resize(band, (n, n), interpolation=cv2.INTER_LINEAR)


def _draw(size: int, fn: Callable[[np.ndarray], None]) -> np.ndarray:
    """A float32 mask in [0, 1] from OpenCV drawing calls on a uint8 canvas."""
    canvas = np.zeros((size, size), np.uint8)
    fn(canvas)
    return canvas.astype(np.float32) / 255.0


def _pts(p: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(p, dtype=np.float64) * 16).astype(np.int32)


def blob_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """An opaque random shape: ellipse, polygon, rounded bar or several of them."""
    import cv2

    def draw(c: np.ndarray) -> None:
        for _ in range(int(rng.integers(1, 3))):
            kind = int(rng.integers(0, 3))
            cx, cy = rng.uniform(-0.1, 1.1, 2) * size
            if kind == 0:
                axes = (int(rng.uniform(0.08, 0.45) * size * 16), int(rng.uniform(0.08, 0.45) * size * 16))
                cv2.ellipse(c, (int(cx * 16), int(cy * 16)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA, 4)
            elif kind == 1:
                n = int(rng.integers(3, 9))
                ang = np.sort(rng.uniform(0, 2 * math.pi, n))
                rad = rng.uniform(0.1, 0.5, n) * size
                p = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
                cv2.fillPoly(c, [_pts(p)], 255, cv2.LINE_AA, 4)
            else:  # a bar: a microphone stand, a pen, a straw, a cable
                a = rng.uniform(0, math.pi)
                length = rng.uniform(0.4, 1.5) * size
                d = np.array([math.cos(a), math.sin(a)]) * length / 2
                p0, p1 = np.array([cx, cy]) - d, np.array([cx, cy]) + d
                th = max(1, int(rng.uniform(0.03, 0.2) * size))
                cv2.line(c, tuple(int(v) for v in _pts(p0)), tuple(int(v) for v in _pts(p1)), 255, th, cv2.LINE_AA, 4)
                if rng.random() < 0.5:  # with a head (a microphone)
                    cv2.circle(c, tuple(int(v) for v in _pts(p1)), int(rng.uniform(0.08, 0.2) * size * 16), 255, -1, cv2.LINE_AA, 4)

    return _draw(size, draw)


def hand_shape(rng: np.random.Generator, size: int) -> np.ndarray:
    """A hand or finger silhouette: a palm and 1–5 fingers of rounded segments, often entering from an edge."""
    import cv2

    scale = rng.uniform(0.25, 0.6) * size
    # Palm centre: near or beyond an edge of the crop (a hand reaches in) or anywhere.
    edge = int(rng.integers(0, 5))
    u = rng.uniform(0.1, 0.9) * size
    centre = {0: (u, size * 1.05), 1: (-0.05 * size, u), 2: (size * 1.05, u), 3: (u, -0.05 * size)}.get(edge, tuple(rng.uniform(0.2, 0.8, 2) * size))
    centre = np.array(centre, dtype=np.float64)
    # Fingers point roughly towards the crop's middle.
    towards = np.array([size / 2, size / 2]) - centre + rng.normal(0, 0.2 * size, 2)
    base_angle = math.atan2(towards[1], towards[0])
    n_fingers = int(rng.choice([1, 1, 2, 4, 4, 5]))
    palm = rng.random() < 0.8

    def draw(c: np.ndarray) -> None:
        if palm:
            ax = (int(scale * 0.55 * 16), int(scale * 0.45 * 16))
            cv2.ellipse(c, tuple(int(v) for v in _pts(centre)), ax, math.degrees(base_angle), 0, 360, 255, -1, cv2.LINE_AA, 4)
        spread = rng.uniform(0.3, 1.2)
        for k in range(n_fingers):
            a = base_angle + (k - (n_fingers - 1) / 2) * spread / max(n_fingers, 1) + rng.normal(0, 0.08)
            width = scale * rng.uniform(0.13, 0.2)
            start = centre + np.array([math.cos(a), math.sin(a)]) * scale * (0.35 if palm else 0.0)
            p = start
            seg_len = scale * rng.uniform(0.3, 0.45)
            for _ in range(3):  # three phalanges, slightly bent
                a += rng.normal(0, 0.15)
                q = p + np.array([math.cos(a), math.sin(a)]) * seg_len
                cv2.line(c, tuple(int(v) for v in _pts(p)), tuple(int(v) for v in _pts(q)), 255, max(1, int(width)), cv2.LINE_AA, 4)
                cv2.circle(c, tuple(int(v) for v in _pts(q)), int(width * 8), 255, -1, cv2.LINE_AA, 4)
                p = q
                seg_len *= 0.8
                width *= 0.92

    return _draw(size, draw)


def hand_texture(rng: np.random.Generator, size: int, face_rgb: np.ndarray | None = None, alpha: np.ndarray | None = None) -> np.ndarray:
    """Skin: a tone from ``SKIN_TONES`` or the face's own mean colour, shaded, with a little texture.

    With the hand's ``alpha`` the fingers and palm are shaded as rounded volumes (darker towards
    their edges, a strength from none — a flat hand in the face's own colour, found only by its
    shape — to strong), lit from one side, with fine skin texture.
    """
    import cv2

    if face_rgb is not None and rng.random() < 0.5:
        tone = np.asarray(face_rgb, np.float32) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    else:
        tone = SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))] * rng.uniform(0.8, 1.15)
    shade = 0.6 + 0.6 * smooth_noise(rng, size, int(rng.integers(2, 5)))[..., 0]
    if alpha is not None:
        inside = (np.asarray(alpha) > 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3).astype(np.float32)
        width = max(float(np.percentile(dist[inside > 0], 90)) if inside.any() else 1.0, 1.0)
        rounded = np.sqrt(np.clip(dist / width, 0, 1))  # a cylinder's profile across a finger
        strength = rng.choice([0.0, rng.uniform(0.1, 0.6)])
        shade = shade * (1 - strength + strength * rounded)
        a = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        shade = shade * (1 + rng.uniform(0, 0.3) * (np.cos(a) * (xx - 0.5) + np.sin(a) * (yy - 0.5)))
        if rng.random() < 0.5:
            shade = 1.0 + 0.15 * (shade - shade.mean())  # nearly flat
    tex = tone * shade[..., None]
    tex = tex + rng.normal(0, rng.uniform(1, 5), (size, size, 3)).astype(np.float32)
    return np.clip(tex, 0, 255).astype(np.float32)


def glasses(rng: np.random.Generator, size: int, eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Glasses over the two eye centres ``eyes`` (2×2, x/y px): (frame alpha, lens alpha, colour image).

    Rims are ellipses or rounded rectangles 1–6 % of the side thick, joined by a bridge, with
    temples running to the sides; lenses are clear, tinted or dark.
    """
    import cv2

    eyes = np.asarray(eyes, dtype=np.float64)
    d = float(np.linalg.norm(eyes[1] - eyes[0]))
    ang = math.degrees(math.atan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    rx, ry = d * rng.uniform(0.38, 0.55), d * rng.uniform(0.25, 0.42)
    thick = max(1, int(round(size * math.exp(rng.uniform(math.log(0.007), math.log(0.05))))))  # mostly thin rims
    drop = d * rng.uniform(-0.05, 0.15)
    round_rims = rng.random() < 0.5
    centres = [e + np.array([0, drop]) for e in eyes]

    def rims(c: np.ndarray, fill: bool) -> None:
        for e in centres:
            if round_rims:
                cv2.ellipse(c, tuple(int(v) for v in _pts(e)), (int(rx * 16), int(ry * 16)), ang, 0, 360, 255, -1 if fill else thick, cv2.LINE_AA, 4)
            else:
                box = cv2.boxPoints(((e[0], e[1]), (2 * rx, 2 * ry), ang))
                if fill:
                    cv2.fillPoly(c, [_pts(box)], 255, cv2.LINE_AA, 4)
                else:
                    cv2.polylines(c, [_pts(box)], True, 255, thick, cv2.LINE_AA, 4)

    def frame(c: np.ndarray) -> None:
        rims(c, False)
        u = (eyes[1] - eyes[0]) / max(d, 1e-6)
        inner0, inner1 = centres[0] + u * rx, centres[1] - u * rx
        mid = (inner0 + inner1) / 2 - np.array([0, ry * rng.uniform(0.0, 0.4)])
        cv2.polylines(c, [_pts(np.stack([inner0, mid, inner1]))], False, 255, thick, cv2.LINE_AA, 4)
        for e, s in ((centres[0], -1), (centres[1], 1)):  # temples towards the ears
            p0 = e + s * u * rx
            p1 = p0 + s * u * d * rng.uniform(0.4, 0.9) + np.array([0, -ry * 0.2])
            cv2.line(c, tuple(int(v) for v in _pts(p0)), tuple(int(v) for v in _pts(p1)), 255, thick, cv2.LINE_AA, 4)

    frame_a = _draw(size, frame)
    lens_kind = rng.random()
    lens_opacity = 0.0 if lens_kind < 0.55 else (rng.uniform(0.15, 0.45) if lens_kind < 0.8 else rng.uniform(0.7, 0.95))
    lens_a = _draw(size, lambda c: rims(c, True)) * lens_opacity
    colour = np.broadcast_to(FRAME_TONES[int(rng.integers(0, len(FRAME_TONES)))], (size, size, 3)).astype(np.float32)
    colour = colour * (0.8 + 0.4 * smooth_noise(rng, size, 3))
    return frame_a, lens_a, np.clip(colour, 0, 255)


def hair_strands(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Hair falling over the face: (alpha, colour), thin curved strands from the top or a side, in a lock."""
    import cv2

    tone = HAIR_TONES[int(rng.integers(0, len(HAIR_TONES)))]
    n = int(rng.integers(3, 40))
    side = int(rng.integers(0, 3))  # from the top, the left, the right
    root = rng.uniform(0.1, 0.9) * size
    spread = rng.uniform(0.05, 0.3) * size
    length = rng.uniform(0.3, 0.9) * size
    bend = rng.normal(0, 0.3 * size)

    def draw(c: np.ndarray) -> None:
        for _ in range(n):
            r = root + rng.normal(0, spread)
            t = np.linspace(0, 1, 12)[:, None]
            along = t[:, 0] * length * rng.uniform(0.7, 1.1)
            across = r + bend * t[:, 0] ** 2 + rng.normal(0, 0.01 * size) * np.sin(t[:, 0] * rng.uniform(2, 8))
            if side == 0:
                p = np.stack([across, along - 0.05 * size], 1)
            elif side == 1:
                p = np.stack([along - 0.05 * size, across], 1)
            else:
                p = np.stack([size * 1.05 - along, across], 1)
            cv2.polylines(c, [_pts(p)], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, 4)

    alpha = _draw(size, draw)
    colour = np.clip(tone * (0.7 + 0.6 * smooth_noise(rng, size, 4)), 0, 255)
    return alpha, colour.astype(np.float32)


OCCLUDER_KINDS = ("shape", "patch", "hand", "glasses", "hair")
KIND_WEIGHTS = {"shape": 1.0, "patch": 0.8, "hand": 1.6, "glasses": 1.2, "hair": 0.7}  # how often each is drawn


def random_occluder(
    rng: np.random.Generator,
    size: int,
    *,
    eyes: np.ndarray | None = None,
    face_rgb: np.ndarray | None = None,
    others: Sequence[Image] = (),
    kind: str | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One occluder for a size×size crop: (alpha float32 [0,1], colour float32 size×size×3 [0,255], kind).

    ``eyes`` are the eye centres in crop pixels (for glasses), ``face_rgb`` the face's mean
    colour (a hand may match it), ``others`` images whose pieces may serve as textures.
    A third of the non-glasses occluders are made semi-transparent (opacity 0.35–0.85).
    """
    if kind is None:
        kinds = [k for k in OCCLUDER_KINDS if (k != "glasses" or eyes is not None) and (k != "patch" or len(others))]
        w = np.array([KIND_WEIGHTS[k] for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    if kind == "glasses":
        if eyes is None:
            raise ValueError("glasses need the eye centres")
        frame_a, lens_a, colour = glasses(rng, size, eyes)
        return np.maximum(frame_a, lens_a), colour, kind
    if kind == "hair":
        alpha, colour = hair_strands(rng, size)
        return alpha, colour, kind
    if kind == "hand":
        alpha = hand_shape(rng, size)
        colour = hand_texture(rng, size, face_rgb, alpha)
    elif kind == "patch":
        if not len(others):
            raise ValueError("a patch needs other images")
        alpha, colour = blob_shape(rng, size), random_texture(rng, size, others)
        src = np.asarray(others[int(rng.integers(0, len(others)))], np.float32)
        if src.shape[:2] == (size, size):
            colour = _top_band(src[..., :3])
    elif kind == "shape":
        alpha, colour = blob_shape(rng, size), random_texture(rng, size, others)
    else:
        raise ValueError(f"unknown occluder kind {kind!r}")
    if rng.random() < 0.33:
        alpha = alpha * rng.uniform(0.35, 0.85)
    return alpha, colour, kind


def hidden(alpha: np.ndarray) -> np.ndarray:
    """How much of the face an occluder of opacity ``alpha`` hides: 0 below ``CLEAR_BELOW``, 1 from ``OPAQUE_FROM``."""
    return np.clip((np.asarray(alpha, np.float32) - CLEAR_BELOW) / (OPAQUE_FROM - CLEAR_BELOW), 0.0, 1.0)


def composite(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``image`` with the occluder laid over it (float32)."""
    a = np.asarray(alpha, np.float32)[..., None]
    return np.asarray(image, np.float32) * (1 - a) + np.asarray(colour, np.float32) * a


# Changes of the face's look that put nothing in front of it: the target stays the same.
def skin_tone(rng: np.random.Generator, img: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Another skin tone: lightness and warmth changed in Lab, on the whole picture or on the face alone."""
    import cv2

    lab = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    out = lab.copy()
    out[..., 0] *= rng.uniform(0.3, 1.15)
    chroma = rng.uniform(0.8, 1.4)
    out[..., 1] = 128 + (lab[..., 1] - 128) * chroma + rng.uniform(-4, 10)
    out[..., 2] = 128 + (lab[..., 2] - 128) * chroma + rng.uniform(-6, 16)
    new = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    if rng.random() < 0.5:
        return new
    soft = cv2.GaussianBlur(np.asarray(face, np.float32), (0, 0), img.shape[0] * 0.03)[..., None]
    return img * (1 - soft) + new * soft


def facial_hair(rng: np.random.Generator, img: np.ndarray, face: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """A moustache and/or beard shading (part of the face, not an occluder), placed from the eye centres."""
    import cv2

    n = img.shape[0]
    e0, e1 = np.asarray(eyes, np.float64)
    d = float(np.linalg.norm(e1 - e0))
    u = (e1 - e0) / max(d, 1e-6)
    down = np.array([-u[1], u[0]])
    mid = (e0 + e1) / 2
    alpha = np.zeros((n, n), np.float32)
    if rng.random() < 0.7:  # moustache between nose and lip
        c = mid + down * d * rng.uniform(0.8, 0.95)
        ax = (int(d * rng.uniform(0.35, 0.55) * 16), int(d * rng.uniform(0.08, 0.16) * 16))
        m = np.zeros((n, n), np.uint8)
        ang = math.degrees(math.atan2(u[1], u[0]))
        cv2.ellipse(m, tuple(int(v) for v in _pts(c)), ax, ang, 0, 360, 255, -1, cv2.LINE_AA, 4)
        alpha = np.maximum(alpha, m.astype(np.float32) / 255)
    if rng.random() < 0.5:  # beard or stubble on the lower face
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
        along = (xx - mid[0]) * down[0] + (yy - mid[1]) * down[1]
        lower = np.clip((along - d * rng.uniform(0.8, 1.1)) / (0.1 * d), 0, 1) * (np.asarray(face) > 0.5)
        alpha = np.maximum(alpha, lower.astype(np.float32) * rng.uniform(0.3, 1.0))
    alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 2.0)) * rng.uniform(0.4, 0.9)
    grain = cv2.GaussianBlur(rng.random((n, n)).astype(np.float32), (0, 0), 0.6)
    tone = HAIR_TONES[int(rng.integers(0, 3))] * (0.6 + 0.8 * grain[..., None])
    return img * (1 - alpha[..., None]) + tone * alpha[..., None]


def shadow_of(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The shadow an occluder of opacity ``alpha`` casts beside itself onto the face (drawn before it)."""
    import cv2

    n = img.shape[0]
    m = np.float32([[1, 0, rng.uniform(-0.08, 0.08) * n], [0, 1, rng.uniform(-0.08, 0.08) * n]])
    sh = cv2.warpAffine(np.asarray(alpha, np.float32), m, (n, n))
    sh = cv2.GaussianBlur(sh, (0, 0), rng.uniform(0.5, 4.0))
    return img * (1 - rng.uniform(0.3, 0.7) * sh[..., None])


def lighting(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Hard cast shadows (a half plane, a band, a random shape), light falling off across the face, a highlight."""
    import cv2

    n = img.shape[0]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    if rng.random() < 0.45:  # a cast shadow with a hard or soft edge
        kind = rng.random()
        if kind < 0.5:  # half plane through a point near the middle (side light: half the face in shade)
            a = rng.uniform(0, 2 * math.pi)
            cx, cy = rng.uniform(0.3, 0.7, 2)
            sh = ((xx - cx) * math.cos(a) + (yy - cy) * math.sin(a) > 0).astype(np.float32)
        elif kind < 0.75:  # a band (a brim, a window frame)
            a = rng.uniform(-0.4, 0.4) + (0 if rng.random() < 0.7 else math.pi / 2)
            c, w = rng.uniform(0.1, 0.8), rng.uniform(0.1, 0.5)
            t = (xx - 0.5) * math.sin(a) + (yy - c) * math.cos(a)
            sh = ((t > -w / 2) & (t < w / 2)).astype(np.float32) if rng.random() < 0.5 else (t < 0).astype(np.float32)
        else:  # the shadow of some object out of view
            sh = blob_shape(rng, n)
        sh = cv2.GaussianBlur(sh, (0, 0), rng.uniform(0.3, 3.0))
        light = rng.uniform(0.2, 0.7)
        tint = rng.uniform(0.9, 1.12, 3).astype(np.float32)
        img = img * (1 - sh[..., None] * (1 - light * tint))
    if rng.random() < 0.4:  # light falling off across the face
        a = rng.uniform(0, 2 * math.pi)
        t = np.clip((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a) + 0.5, 0, 1)
        lo, hi = rng.uniform(0.2, 0.8), rng.uniform(0.9, 1.4)
        img = img * (lo + (hi - lo) * t)[..., None]
    if rng.random() < 0.15:  # a specular highlight
        cx, cy = rng.uniform(0.25, 0.75, 2)
        r = rng.uniform(0.05, 0.2)
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        img = img + rng.uniform(30, 100) * g[..., None]
    return img


def camera(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """The camera's share: exposure, contrast, saturation, white balance, gamma, blur, noise, JPEG."""
    import cv2

    img = img * rng.uniform(0.6, 1.4) + rng.uniform(-20, 20)
    grey = img.mean(2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.5, 1.4)
    if rng.random() < 0.4:
        img = img * rng.uniform(0.75, 1.25, 3).astype(np.float32)
    img = np.clip(img, 0, 255)
    if rng.random() < 0.4:
        img = 255.0 * (img / 255.0) ** rng.uniform(0.5, 2.0)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
    if rng.random() < 0.35:
        img = img + rng.normal(0, rng.uniform(1, 10), img.shape).astype(np.float32)
    if rng.random() < 0.25:
        ok, buf = cv2.imencode(".jpg", np.clip(img + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(10, 70))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32)
    return np.clip(img, 0, 255)


def synth_sample(
    rng: np.random.Generator,
    image: Image,
    face: np.ndarray,
    *,
    eyes: np.ndarray | None = None,
    others: Sequence[Image] = (),
    out_size: int = SEG_SIZE,
    p_clear: float = 0.35,
    looks: bool = True,
) -> tuple[Image, np.ndarray, np.ndarray]:
    """One training pair from an aligned crop: (uint8 out×out×3 image, float32 out×out visible-face
    target, float32 out×out face region).

    ``image`` (uint8 N×N×3) and ``face`` (float32 N×N face region, :func:`face_target`) are at the
    drawing resolution (``SYNTH_SCALE`` × ``out_size``); ``eyes`` in its pixels. First the face's
    own look changes (another skin tone, facial hair); with probability ``p_clear`` nothing is
    pasted, otherwise one to three occluders, some casting a shadow; then the light (hard cast
    shadows, fall-off, highlights) and the camera (exposure, white balance, gamma, blur, noise,
    JPEG). Only the occluders change the target: a shadow, a dark skin or a moustache is face.
    ``looks=False`` leaves out the skin, facial hair, shadows and light and keeps a mild camera
    jitter (a few-second training on drawn faces learns faster without them).
    """
    import cv2

    n = image.shape[0]
    img = np.asarray(image, np.float32)[..., :3]
    vis = np.asarray(face, np.float32).copy()
    if looks and rng.random() < 0.4:
        img = skin_tone(rng, img, face)
    if looks and eyes is not None and rng.random() < 0.15:
        img = facial_hair(rng, img, face, eyes)
    face_rgb = img[face > 0.5].mean(0) if (face > 0.5).any() else None
    if rng.random() >= p_clear:
        for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
            alpha, colour, _kind = random_occluder(rng, n, eyes=eyes, face_rgb=face_rgb, others=others)
            if looks and rng.random() < 0.3:
                img = shadow_of(rng, img, alpha)
            img = composite(img, alpha, colour)
            vis = vis * (1.0 - hidden(alpha))
    if looks:
        img = camera(rng, lighting(rng, img))
    else:
        img = np.clip(img * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20), 0, 255)
    face = np.asarray(face, np.float32)
    if n != out_size:
        img = cv2.resize(img, (out_size, out_size), interpolation=cv2.INTER_AREA)
        vis = cv2.resize(vis, (out_size, out_size), interpolation=cv2.INTER_AREA)
        face = cv2.resize(face, (out_size, out_size), interpolation=cv2.INTER_AREA)
    return (img + 0.5).astype(np.uint8), np.clip(vis, 0, 1).astype(np.float32), np.clip(face, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------
DEFAULT_WIDTHS = (8, 16, 32, 48)


def build_net(widths: Sequence[int] = DEFAULT_WIDTHS) -> Any:
    """A tiny U-Net: two 3×3 convolution + batch-norm + ReLU per level, max-pool down, bilinear up
    with skips; one logit channel."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self, widths: Sequence[int]) -> None:
            super().__init__()
            w = list(widths)
            self.widths = tuple(w)
            self.down = nn.ModuleList([block(3 if i == 0 else w[i - 1], w[i]) for i in range(len(w))])
            self.up = nn.ModuleList([block(w[i + 1] + w[i], w[i]) for i in range(len(w) - 1)])
            self.head = nn.Conv2d(w[0], 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Logits [B,1,H,W] for RGB [B,3,H,W] in [0, 1] (H, W divisible by 2^(levels−1))."""
            skips = []
            h = x - 0.5
            for i, blk in enumerate(self.down):
                if i:
                    h = F.max_pool2d(h, 2)
                h = blk(h)
                skips.append(h)
            for i in range(len(self.up) - 1, -1, -1):
                h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
                h = self.up[i](torch.cat([h, skips[i]], 1))
            return self.head(h)

    return UNet(widths)


@dataclass(frozen=True)
class OcclusionInfo:
    """What a weights file says about its network (its safetensors metadata)."""

    size: int = SEG_SIZE
    coverage: float = SEG_COVERAGE
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    trained: str = ""  # how it was trained (a one-line description: data, steps, seed)


def save_weights(path: str | Path, net: Any, info: OcclusionInfo) -> None:
    """Write the network as safetensors (atomic), its :class:`OcclusionInfo` in the metadata."""
    from safetensors.torch import save_file

    from facedub.fileio import atomic_path

    meta = {"format": FORMAT, "info": json.dumps({**asdict(info), "widths": list(info.widths)})}
    tensors = {k: (v.float() if v.is_floating_point() else v).detach().contiguous().cpu() for k, v in net.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, ".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)


class OcclusionModel:
    """The segmentation network ready to run: inputs from frames, visible-face probabilities out."""

    def __init__(self, net: Any, info: OcclusionInfo) -> None:
        self.net = net.eval()
        self.info = info
        self.size = info.size
        self.coverage = info.coverage

    def inputs(self, rgb: Image, frame_to_crop: np.ndarray) -> tuple[Image, np.ndarray]:
        """(uint8 S×S×3 input, frame → input matrix) for the face aligned by ``frame_to_crop``."""
        return seg_input(rgb, frame_to_crop, self.size, self.coverage)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Visible-face probability, float32 [B,S,S], for uint8 inputs [B,S,S,3] (or one S×S×3)."""
        import torch

        arr = np.asarray(batch)
        one = arr.ndim == 3
        if one:
            arr = arr[None]
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)
            p = torch.sigmoid(self.net(x))[:, 0].contiguous().numpy()
        return p[0] if one else p


def load_occlusion(path: str | Path | None = None) -> OcclusionModel:
    """The network in ``path`` (default: the generic weights shipped in the package), on the CPU."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from facedub.errors import ModelMismatch

    path = Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise ModelMismatch(f"{path}: occlusion weights not found (reinstall facedub, or use --occlusion off)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
        raw = json.loads(meta["info"])
        info = OcclusionInfo(int(raw["size"]), float(raw["coverage"]), tuple(int(w) for w in raw["widths"]), str(raw.get("trained", "")))
        net = build_net(info.widths)
        net.load_state_dict(load_file(str(path)))
    except Exception as e:  # noqa: BLE001 - one line naming the file
        raise ModelMismatch(f"{path}: not usable occlusion weights ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return OcclusionModel(net, info)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OcclusionTrainConfig:
    steps: int = 1500  # optimiser steps (a batch of freshly synthesised pairs each)
    minutes: float | None = None  # stop after this many minutes even if steps remain
    batch: int = 32  # pairs per step
    lr: float = 2e-3  # Adam learning rate, cosine-decayed to 5 % over the steps
    occluded_weight: float = 1.0  # loss weight of face pixels an occluder hides (the rare, important class)
    widths: tuple[int, ...] = DEFAULT_WIDTHS  # U-Net channels per level
    size: int = SEG_SIZE  # network input side
    seed: int = 0
    looks: bool = True  # label-preserving changes of skin, facial hair, shadows and light (see synth_sample)
    threads: int | None = 1  # torch threads (the batch synthesis runs on a thread of its own); None = torch's default


@dataclass(frozen=True)
class CropSet:
    """Aligned faces ready for synthesis, at the drawing resolution (``SYNTH_SCALE`` × size)."""

    images: np.ndarray  # uint8 [N,n,n,3]
    faces: np.ndarray  # float32 [N,n,n] face regions (face_target)
    eyes: np.ndarray  # float64 [N,2,2] eye centres in those pixels


def crop_set(crops: Sequence[Image], landmarks: Sequence[np.ndarray], size: int = SEG_SIZE, coverage: float = SEG_COVERAGE) -> CropSet:
    """A :class:`CropSet` from 256 px aligned crops and their 68 landmarks in crop pixels."""
    from facedub.faces.align import LM68_LEFT_EYE, LM68_RIGHT_EYE, crop_to_model

    n = SYNTH_SCALE * size
    m = crop_to_model_matrix(coverage, n)
    imgs, faces, eyes = [], [], []
    for crop, lm in zip(crops, landmarks):
        lm = np.asarray(lm, np.float64)
        imgs.append(crop_to_model(np.asarray(crop)[..., :3], coverage, n))
        faces.append(face_target(lm, n, coverage))
        e = np.stack([lm[LM68_RIGHT_EYE].mean(0), lm[LM68_LEFT_EYE].mean(0)])
        eyes.append(transform_points(e, m))
    if not imgs:
        raise ValueError("crop_set needs at least one crop")
    return CropSet(np.stack(imgs), np.stack(faces).astype(np.float32), np.stack(eyes))


def faceset_crops(folders: Sequence[str | Path], every: int = 1, limit: int | None = None) -> tuple[list[Image], list[np.ndarray]]:
    """(256 px crops, landmarks in crop pixels) of every ``every``-th face of the facesets in ``folders``."""
    from facedub.faceset.store import faceset_dir, load_crop, load_faceset

    crops, lms = [], []
    for folder in folders:
        fs = load_faceset(folder)
        d = faceset_dir(folder)
        recs = fs.faces[::every]
        if limit is not None:
            recs = recs[:limit]
        for rec in recs:
            crops.append(load_crop(d, rec.file))
            lms.append(transform_points(rec.landmarks_array(), rec.affine_array()))
    return crops, lms


def synth_batch(rng: np.random.Generator, data: CropSet, batch: int, size: int = SEG_SIZE, looks: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batch`` training pairs: (uint8 images [B,S,S,3], float32 visible-face targets [B,S,S], float32
    face regions [B,S,S]), each face with a random small rotation, zoom, shift and flip."""
    import cv2

    n = data.images.shape[1]
    xs, ys, fs = [], [], []
    for _ in range(batch):
        i = int(rng.integers(0, len(data.images)))
        img, face, eyes = data.images[i], data.faces[i], data.eyes[i]
        # A small similarity jitter (convert's alignment is not perfect either).
        a = rng.uniform(-8, 8)
        s = rng.uniform(0.92, 1.08)
        m = cv2.getRotationMatrix2D((n / 2, n / 2), a, s)
        m[:, 2] += rng.uniform(-0.04, 0.04, 2) * n
        img = cv2.warpAffine(img, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        face = cv2.warpAffine(face, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        eyes = transform_points(eyes, m)
        if rng.random() < 0.5:
            img, face = img[:, ::-1], face[:, ::-1]
            eyes = np.stack([[n - 1 - eyes[1, 0], eyes[1, 1]], [n - 1 - eyes[0, 0], eyes[0, 1]]])
        others = [data.images[int(j)] for j in rng.integers(0, len(data.images), 2)]
        x, y, f = synth_sample(rng, np.ascontiguousarray(img), np.ascontiguousarray(face), eyes=eyes, others=others, out_size=size, looks=looks)
        xs.append(x)
        ys.append(y)
        fs.append(f)
    return np.stack(xs), np.stack(ys), np.stack(fs)


def occlusion_loss(logits: Any, target: Any, face: Any, occluded_weight: float) -> Any:
    """Weighted binary cross-entropy plus a soft Dice term on the hidden part of the face.

    ``target`` is the visible face, ``face`` the face region; face pixels an occluder hides
    decide what would be painted over, so they weigh ``1 + occluded_weight``.
    """
    import torch.nn.functional as F

    p = logits.sigmoid()
    hid_t = face * (1 - target)
    w = 1.0 + occluded_weight * hid_t
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=w)
    hid_p = face * (1 - p)
    inter = (hid_p * hid_t).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (hid_p.sum((1, 2, 3)) + hid_t.sum((1, 2, 3)) + 1)
    return bce + 0.5 * dice.mean()


def train_occlusion(data: CropSet, config: OcclusionTrainConfig = OcclusionTrainConfig(), reporter: Any = None) -> Any:
    """Fit a fresh network on synthesised pairs from ``data``; returns it (in eval mode).

    Reproducible for a given ``data``, ``config`` and thread count: one numpy Generator draws
    the occluders, torch's generator is seeded for the initial weights.
    """
    import torch

    from facedub.progress import NullReporter

    reporter = reporter or NullReporter()
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = build_net(config.widths)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    net.train()
    t0 = time.perf_counter()
    # One producer thread synthesises the batches in order (OpenCV and numpy release the GIL,
    # so it runs beside the optimiser on another core); the stream is the same as drawn inline.
    batches: "queue.Queue[Any]" = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        try:
            for _ in range(config.steps):
                item = synth_batch(rng, data, config.batch, config.size, config.looks)
                while not stop.is_set():
                    try:
                        batches.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the training thread
            batches.put(e)

    producer = threading.Thread(target=produce, name="facedub-occlusion-synth", daemon=True)
    producer.start()
    reporter.start("occlusion", total=config.steps, unit="step")
    try:
        for step in range(config.steps):
            lr = config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(config.steps, 1))))
            for g in opt.param_groups:
                g["lr"] = lr
            got = batches.get()
            if isinstance(got, BaseException):
                raise got
            x, y, f = got
            xt = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0)
            loss = occlusion_loss(net(xt), torch.from_numpy(y)[:, None], torch.from_numpy(f)[:, None], config.occluded_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            reporter.advance(1, loss=float(loss.detach()))
            if config.minutes is not None and time.perf_counter() - t0 > 60 * config.minutes:
                break
            if reporter.should_stop():
                break
    finally:
        stop.set()
        producer.join(timeout=10)
        torch.set_num_threads(threads_before)
        reporter.finish()
    return net.eval()


def hidden_iou(pred: np.ndarray, target: np.ndarray, face: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of the hidden parts of the face (``pred``, ``target``: visible-face maps)."""
    inside = np.asarray(face) > 0.5
    a, b = (np.asarray(pred) < threshold) & inside, (np.asarray(target) < threshold) & inside
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
