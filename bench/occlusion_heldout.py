"""Held-out check of the occlusion network: how much of a CLEAR face does it call hidden?

    python bench/occlusion_heldout.py                       # the shipped weights
    python bench/occlusion_heldout.py --weights W.safetensors

A face with nothing in front of it should read fully visible; every pixel of it the network
calls hidden stays unswapped in convert (and carries no loss in training). The faces here were
never trained on: the portraits ``aiface6`` (photoreal), ``aiface7`` and ``aiface8`` (stylised
3D), the GRID speakers ``swiz3n`` and ``sbwe5n`` (every 8th frame) and aiface1 frames 450–499
(every 5th). Each is shown as it is and under conditions that change how the face looks but
put nothing in front of it, drawn here with their own code (not the training generator's):

* ``hard shadow``: one side of the face, split along a line through the nose, at 30–45 % light;
* ``brim shadow``: a band of shadow across the eyes and brows (a cap's brim), 35 % light;
* ``side light``: light falling off across the face from 120 % to 25 %, gamma 1.4;
* ``dark skin``: the whole picture darker and warmer in Lab (L × 0.45), as a deep skin tone;
* ``dark skin + moustache``: the same, with a dark textured moustache above the upper lip;
* ``low light, colour cast``: × 0.5 with an orange white balance and sensor noise (σ 6);
* ``overexposed``: × 1.6, clipped;
* ``JPEG q15 + blur``: a soft, blocky face (σ 1.5 px blur, then JPEG quality 15).

Reported: the share of the face (the hull convert pastes, forehead 0.1) the network calls
hidden (visible probability < 0.5): median, 95th percentile and maximum per condition and over
all. Goal for occlusion on by default: p95 ≤ 5 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench._common import SHARED_DATA  # noqa: E402

PORTRAITS = ("aiface6.png", "aiface7.png", "aiface8.png")
GRID = ("swiz3n.mpg", "sbwe5n.mpg")
GRID_EVERY = 8
AIFACE1 = (450, 500, 5)  # frames start, stop, step of aiface1/speech_512.mp4 (never trained on)
FOREHEAD = 0.1  # convert's default --forehead: the hull that is pasted
GOAL_P95 = 0.05


def _aligned(rgb: np.ndarray, det) -> tuple[np.ndarray, np.ndarray] | None:
    from facedub.faces.align import CROP_SIZE, align_matrix, transform_points, warp

    faces = det.detect(rgb)
    if not faces:
        return None
    f = max(faces, key=lambda f: float(np.ptp(np.asarray(f.landmarks68)[:, 0])))
    a = align_matrix(f.points5)
    return warp(rgb, a, CROP_SIZE), transform_points(np.asarray(f.landmarks68, np.float64), a)


def heldout_faces() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, 256 px aligned crop, 68 landmarks in crop px) of every held-out face found."""
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import load_image, open_media

    out = []
    with FaceDetector() as det:
        for name in PORTRAITS:
            rgb = np.asarray(load_image(SHARED_DATA / "portraits" / name))[..., :3]
            got = _aligned(np.ascontiguousarray(rgb), det)
            if got:
                out.append((name, *got))
        for name in GRID:
            for i, fr in enumerate(open_media(SHARED_DATA / "grid" / name).frames()):
                if i % GRID_EVERY == 0:
                    got = _aligned(fr.rgb, det)
                    if got:
                        out.append((f"{name}#{i}", *got))
        start, stop, step = AIFACE1
        for i, fr in enumerate(open_media(SHARED_DATA / "synthetic" / "aiface1" / "speech_512.mp4").frames(start=start, limit=stop - start)):
            if i % step == 0:
                got = _aligned(fr.rgb, det)
                if got:
                    out.append((f"aiface1#{start + i}", *got))
    return out


# --- conditions: the face looks different, nothing is in front of it ---------------------------
def _side_mask(lm: np.ndarray, shape, angle_deg: float, soft: float) -> np.ndarray:
    """1 on one side of a line through the nose bridge and tip (turned by ``angle_deg``), 0 on the other."""
    import cv2

    top, tip = lm[27], lm[30]
    d = tip - top
    a = np.deg2rad(angle_deg)
    d = np.array([d[0] * np.cos(a) - d[1] * np.sin(a), d[0] * np.sin(a) + d[1] * np.cos(a)])
    nrm = np.array([d[1], -d[0]]) / max(np.linalg.norm(d), 1e-6)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    side = ((xx - tip[0]) * nrm[0] + (yy - tip[1]) * nrm[1] > 0).astype(np.float32)
    return cv2.GaussianBlur(side, (0, 0), soft) if soft > 0 else side


def hard_shadow(img, lm, rng):
    s = _side_mask(lm, img.shape, rng.uniform(-20, 20), 1.5)
    if rng.random() < 0.5:
        s = 1 - s
    light = rng.uniform(0.3, 0.45)
    tint = np.array([0.95, 1.0, 1.1], np.float32)  # shadows are lit by the (bluer) sky
    f = 1 - s[..., None] * (1 - light * tint)
    return img * f


def brim_shadow(img, lm, rng):
    import cv2

    y = float(lm[29][1]) + rng.uniform(-4, 4)  # about the middle of the nose: eyes and brows in shade
    yy = np.mgrid[0 : img.shape[0], 0 : img.shape[1]][0].astype(np.float32)
    band = cv2.GaussianBlur((yy < y).astype(np.float32), (0, 0), 2.0)
    return img * (1 - 0.65 * band[..., None])


def side_light(img, lm, rng):
    xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]][1].astype(np.float32) / img.shape[1]
    if rng.random() < 0.5:
        xx = 1 - xx
    ramp = 1.2 - 0.95 * xx
    out = np.clip(img * ramp[..., None], 0, 255)
    return 255.0 * (out / 255.0) ** 1.4


def dark_skin(img, lm, rng):
    import cv2

    lab = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 0.45
    lab[..., 1] = 128 + (lab[..., 1] - 128) * 1.1 + 4
    lab[..., 2] = 128 + (lab[..., 2] - 128) * 1.1 + 8
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)


def moustache(img, lm, rng):
    """A dark moustache between the nose and the upper lip (textured, soft-edged)."""
    import cv2

    a = np.zeros(img.shape[:2], np.uint8)
    top = lm[31:36]
    lip = lm[[48, 49, 50, 51, 52, 53, 54]]
    poly = np.concatenate([top[:, :] + [0, 2], lip[::-1] + [0, 1]], 0)
    poly = np.concatenate([[lip[0] + [-6, 4]], poly, [lip[-1] + [6, 4]]], 0)
    cv2.fillPoly(a, [np.round(poly).astype(np.int32)], 255, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(a.astype(np.float32) / 255, (0, 0), 1.5) * 0.85
    strands = rng.random(img.shape[:2]).astype(np.float32)
    strands = cv2.GaussianBlur(strands, (0, 0), 0.7)
    colour = np.array([28, 20, 16], np.float32) * (0.7 + 0.8 * strands[..., None])
    return dark_skin(img, lm, rng) * (1 - alpha[..., None]) + colour * alpha[..., None]


def dark_skin_moustache(img, lm, rng):
    return moustache(img, lm, rng)


def low_light_cast(img, lm, rng):
    out = img * np.array([1.25, 0.95, 0.6], np.float32) * 0.5
    return out + rng.normal(0, 6, img.shape).astype(np.float32)


def overexposed(img, lm, rng):
    return img * 1.6


def jpeg_blur(img, lm, rng):
    import cv2

    out = cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 1.5)
    ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 15])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)


CONDITIONS = {
    "as is": lambda img, lm, rng: img,
    "hard shadow": hard_shadow,
    "brim shadow": brim_shadow,
    "side light": side_light,
    "dark skin": dark_skin,
    "dark skin + moustache": dark_skin_moustache,
    "low light, colour cast": low_light_cast,
    "overexposed": overexposed,
    "JPEG q15 + blur": jpeg_blur,
}


def hidden_share(model, crop: np.ndarray, lm: np.ndarray) -> float:
    """The share of the pasted face hull that ``model`` calls hidden in this 256 px crop."""
    from facedub.convert.occlusion import visible_share
    from facedub.faces.align import crop_to_model, crop_to_model_matrix, face_outline, transform_points

    x = crop_to_model(np.ascontiguousarray(crop), model.coverage, model.size)
    outline = transform_points(face_outline(lm, FOREHEAD), crop_to_model_matrix(model.coverage, model.size))
    return 1.0 - visible_share(model(x), outline)


def measure(model, faces=None, seed: int = 0) -> dict[str, np.ndarray]:
    """Condition → hidden share of every held-out face (seeded)."""
    faces = heldout_faces() if faces is None else faces
    out = {}
    for ci, (cname, fn) in enumerate(CONDITIONS.items()):
        rng = np.random.default_rng(seed * 1000 + ci)
        vals = []
        for _name, crop, lm in faces:
            img = np.clip(fn(crop.astype(np.float32), lm, rng), 0, 255)
            vals.append(hidden_share(model, (img + 0.5).astype(np.uint8), lm))
        out[cname] = np.array(vals)
    return out


def occluders_found(model, faces=None) -> dict[str, float]:
    """Occluder kind → the share of its pixels over the face the network calls hidden, on the aiface1
    held-out frames, with the occluders of ``bench/bench_occlusion.py`` drawn into the aligned crop
    (the network alone, no conversion: a quick companion of that benchmark's PSNR)."""
    import cv2

    from bench.bench_occlusion import DRAW
    from facedub.faces.align import crop_to_model, crop_to_model_matrix, face_outline, transform_points

    faces = heldout_faces() if faces is None else faces
    faces = [f for f in faces if f[0].startswith("aiface1")]
    out = {}
    for kind, draw in DRAW.items():
        hit = tot = 0
        for _name, crop, lm in faces:
            alpha, colour = draw(lm, crop.shape, 0.5)
            img = crop.astype(np.float32) * (1 - alpha[..., None]) + colour * alpha[..., None]
            x = crop_to_model(np.clip(img + 0.5, 0, 255).astype(np.uint8), model.coverage, model.size)
            a = crop_to_model(alpha.astype(np.float32), model.coverage, model.size)
            hull = transform_points(face_outline(lm, FOREHEAD), crop_to_model_matrix(model.coverage, model.size))
            inside = np.zeros(a.shape, np.uint8)
            cv2.fillConvexPoly(inside, cv2.convexHull(np.round(hull).astype(np.int32)), 1)
            m = (a >= 0.5) & (inside > 0)
            hit += int((model(x)[m] < 0.5).sum())
            tot += int(m.sum())
        out[kind] = hit / max(tot, 1)
    return out


def table(result: dict[str, np.ndarray]) -> list[str]:
    lines = ["| condition | faces | median | p95 | max |", "|---|---|---|---|---|"]
    for cname, v in result.items():
        lines.append(f"| {cname} | {len(v)} | {np.median(v):.1%} | {np.percentile(v, 95):.1%} | {v.max():.1%} |")
    allv = np.concatenate(list(result.values()))
    lines.append(f"| **all** | {len(allv)} | **{np.median(allv):.1%}** | **{np.percentile(allv, 95):.1%}** | **{allv.max():.1%}** |")
    return lines


def summary(result: dict[str, np.ndarray]) -> dict[str, float]:
    allv = np.concatenate(list(result.values()))
    return {"median": float(np.median(allv)), "p95": float(np.percentile(allv, 95)), "max": float(allv.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="occlusion weights (default: the shipped ones)")
    args = ap.parse_args()
    if not SHARED_DATA.is_dir():
        sys.exit(f"{SHARED_DATA}: shared test data not found")
    from facedub.convert.occlusion import load_occlusion

    model = load_occlusion(args.weights)
    faces = heldout_faces()
    res = measure(model, faces)
    print("\n".join(table(res)))
    print(summary(res))
    print("occluders found (share of the occluder over the face called hidden):", occluders_found(model, faces))


if __name__ == "__main__":
    main()
