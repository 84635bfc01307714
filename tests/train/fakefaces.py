"""Synthetic facesets for the train tests: drawn "faces" with consistent 68-point landmarks.

Imported by path (tests are not a package). Each identity has its own skin, eye and mouth
colours and face shape; each face varies (mouth opening, eye size, a small shift), so a model
has something to learn and a validation loss that falls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def landmarks68(cx: float, cy: float, face_w: float, face_h: float, mouth_open: float, eye_r: float) -> np.ndarray:
    """Plausible 68 iBUG points in a 256 crop."""
    pts = []
    for t in np.linspace(np.pi * 1.05, -0.05 * np.pi, 17):  # jaw: ear to ear under the face
        pts.append((cx + face_w * np.cos(t), cy + 0.15 * face_h - face_h * np.sin(t) * 0.9))
    for ex in (-1, 1):  # brows
        for t in np.linspace(-1, 1, 5):
            pts.append((cx + ex * 0.25 * face_w * 1.3 + t * 0.18 * face_w, cy - 0.45 * face_h))
    for t in np.linspace(0, 1, 4):  # nose bridge
        pts.append((cx, cy - 0.3 * face_h + t * 0.35 * face_h))
    for t in np.linspace(-1, 1, 5):  # nostrils
        pts.append((cx + t * 0.12 * face_w, cy + 0.1 * face_h))
    for ex in (-1, 1):  # eyes (6 each)
        ecx, ecy = cx + ex * 0.32 * face_w, cy - 0.3 * face_h
        for t in np.linspace(0, 2 * np.pi, 7)[:-1]:
            pts.append((ecx + 1.6 * eye_r * np.cos(t), ecy + eye_r * np.sin(t)))
    mcx, mcy = cx, cy + 0.35 * face_h
    for t in np.linspace(0, 2 * np.pi, 13)[:-1]:  # outer lips 12
        pts.append((mcx + 0.3 * face_w * np.cos(t), mcy + (0.06 + mouth_open) * face_h * np.sin(t)))
    for t in np.linspace(0, 2 * np.pi, 9)[:-1]:  # inner lips 8
        pts.append((mcx + 0.2 * face_w * np.cos(t), mcy + mouth_open * face_h * np.sin(t)))
    a = np.asarray(pts, np.float64)
    assert a.shape == (68, 2), a.shape
    return a


IDENTITIES = {
    "alice": dict(skin=(222, 180, 150), eye=(40, 90, 160), mouth=(170, 40, 60), w=62, h=82, bg=(40, 120, 90)),
    "bob": dict(skin=(150, 105, 80), eye=(50, 40, 30), mouth=(120, 50, 50), w=70, h=76, bg=(120, 90, 160)),
}


def draw_face(ident: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    p = IDENTITIES[ident]
    img = np.zeros((256, 256, 3), np.uint8)
    yy = np.linspace(0, 1, 256)[:, None, None]
    img[:] = (np.asarray(p["bg"]) * (0.7 + 0.3 * yy)).astype(np.uint8)
    cx, cy = 128 + rng.normal(0, 2), 128 + rng.normal(0, 2)
    mouth_open = rng.uniform(0.0, 0.08)
    eye_r = rng.uniform(4, 8)
    lm = landmarks68(cx, cy, p["w"], p["h"], mouth_open, eye_r)
    cv2.ellipse(img, (int(cx), int(cy)), (p["w"], p["h"]), 0, 0, 360, p["skin"], -1, cv2.LINE_AA)
    for idx in (range(36, 42), range(42, 48)):
        cv2.fillPoly(img, [np.round(lm[list(idx)]).astype(np.int32)], (250, 250, 250), cv2.LINE_AA)
        c = lm[list(idx)].mean(0)
        cv2.circle(img, (int(c[0]), int(c[1])), int(eye_r * 0.8), p["eye"], -1, cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(lm[48:60]).astype(np.int32)], p["mouth"], cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(lm[60:68]).astype(np.int32)], (30, 10, 10), cv2.LINE_AA)
    cv2.polylines(img, [np.round(lm[27:36]).astype(np.int32)], False, (90, 60, 50), 2, cv2.LINE_AA)
    noise = rng.normal(0, 3, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), lm


def make_faceset(folder: Path, ident: str, n: int = 40, seed: int = 0, consent: bool = True) -> Path:
    """Write a faceset of ``n`` synthetic faces of ``ident`` into ``folder``."""
    from facedub.faceset import FaceRecord, Faceset, SourceRecord, save_faceset
    from facedub.fileio import write_png

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "faces").mkdir(parents=True, exist_ok=True)
    faces = []
    for i in range(n):
        img, lm = draw_face(ident, rng)
        file = f"faces/s00_f{i:06d}_0.png"
        write_png(folder / file, img)
        desc = tuple(float(x) for x in rng.normal(0.0 if ident == "alice" else 0.3, 0.05, 128))
        faces.append(
            FaceRecord(
                file=file,
                source=0,
                frame=i,
                time=i / 25,
                bbox=(60.0, 40.0, 196.0, 220.0),
                landmarks=tuple((float(x), float(y)) for x, y in lm),
                affine=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
                det_score=0.99,
                sharpness=100.0,
                descriptor=desc,
            )
        )
    record = None
    if consent:  # a valid record for the drawn (synthetic) identity, as `extract --consent` binds it
        from facedub.safety.consent import create_consent

        record = create_consent(ident, "facedub tests", "training tests", synthetic=True).to_dict()
    fs = Faceset(
        id=f"fs-{ident}-{n}-{seed}",
        sources=(SourceRecord(path=f"/synthetic/{ident}.mp4", sha256="0" * 64, kind="video", frames=n, fps=25.0, width=256, height=256),),
        faces=tuple(faces),
        consent=record,
    )
    save_faceset(fs, folder)
    return folder


def load_helpers():
    return __import__(__name__)
