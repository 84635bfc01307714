"""Look at a faceset: counts, identity consistency, pose and sharpness spread, contact sheet."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facedub.faceset.schema import Faceset


@dataclass(frozen=True)
class Spread:
    min: float
    p5: float
    median: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: list[float] | np.ndarray) -> "Spread | None":
        v = np.asarray(values, dtype=np.float64)
        if v.size == 0:
            return None
        p = np.percentile(v, [0, 5, 50, 95, 100])
        return cls(*(round(float(x), 2) for x in p))


@dataclass(frozen=True)
class FacesetStats:
    id: str
    faces: int
    sources: int
    removed: int
    with_descriptor: int
    identity_mean_distance: float | None  # mean descriptor distance to the faceset's mean descriptor
    identity_max_distance: float | None
    identity_outliers: int  # descriptors at least MATCH_DISTANCE (0.5) from the mean: probably someone else
    yaw: Spread | None
    pitch: Spread | None
    roll: Spread | None
    sharpness: Spread | None
    det_score: Spread | None
    has_consent: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        def sp(name: str, s: Spread | None, unit: str = "") -> str:
            if s is None:
                return f"  {name}: n/a"
            return f"  {name}: median {s.median:g}{unit}, 5–95% {s.p5:g}…{s.p95:g}{unit}, range {s.min:g}…{s.max:g}{unit}"

        out = [f"faceset {self.id}: {self.faces} faces from {self.sources} source(s)" + (f", {self.removed} removed by hand" if self.removed else "")]
        if self.identity_mean_distance is None:
            out.append("  identity: no descriptors")
        else:
            verdict = "consistent: one person" if self.identity_outliers == 0 else f"{self.identity_outliers} face(s) look like someone else"
            out.append(
                f"  identity: {verdict} (descriptor distance to the mean {self.identity_mean_distance:.3f} on average, "
                f"max {self.identity_max_distance:.3f}; same person < 0.5; {self.with_descriptor} descriptors)"
            )
        out.append(sp("yaw", self.yaw, "°"))
        out.append(sp("pitch", self.pitch, "°"))
        out.append(sp("roll", self.roll, "°"))
        out.append(sp("sharpness", self.sharpness))
        out.append(sp("detector score", self.det_score))
        out.append(f"  consent record: {'bound' if self.has_consent else 'none'}")
        return out


def faceset_stats(fs: Faceset) -> FacesetStats:
    from facedub.faces.identity import MATCH_DISTANCE

    descs = np.array([f.descriptor for f in fs.faces if f.descriptor is not None], dtype=np.float64)
    mean_d = max_d = None
    outliers = 0
    if len(descs):
        d = np.linalg.norm(descs - descs.mean(axis=0), axis=1)
        mean_d, max_d = round(float(d.mean()), 4), round(float(d.max()), 4)
        outliers = int((d >= MATCH_DISTANCE).sum())
    poses = np.array([f.pose for f in fs.faces if f.pose is not None], dtype=np.float64).reshape(-1, 3)
    return FacesetStats(
        id=fs.id,
        faces=len(fs.faces),
        sources=len(fs.sources),
        removed=len(fs.removed),
        with_descriptor=len(descs),
        identity_mean_distance=mean_d,
        identity_max_distance=max_d,
        identity_outliers=outliers,
        yaw=Spread.of(poses[:, 0]),
        pitch=Spread.of(poses[:, 1]),
        roll=Spread.of(poses[:, 2]),
        sharpness=Spread.of([f.sharpness for f in fs.faces]),
        det_score=Spread.of([f.det_score for f in fs.faces]),
        has_consent=fs.consent is not None,
    )


def contact_sheet(fs: Faceset, folder: str | os.PathLike[str], out_png: str | os.PathLike[str], max_faces: int = 80, thumb: int = 96, columns: int = 10) -> Path:
    """A grid of up to ``max_faces`` crops spread evenly over the faceset, written atomically.

    Each thumbnail carries its frame number; crops whose file is missing show as grey.
    """
    from PIL import Image, ImageDraw

    from facedub.fileio import write_png

    faces = fs.faces
    if len(faces) > max_faces:
        pick = np.linspace(0, len(faces) - 1, max_faces).round().astype(int)
        faces = tuple(faces[i] for i in pick)
    n = max(1, len(faces))
    cols = min(columns, n)
    rows = (n + cols - 1) // cols
    label_h = 14
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for i, f in enumerate(faces):
        x, y = (i % cols) * thumb, (i // cols) * (thumb + label_h)
        p = Path(folder) / f.file
        try:
            with Image.open(p) as im:
                tile = im.convert("RGB").resize((thumb, thumb), Image.Resampling.BILINEAR)
        except OSError:
            tile = Image.new("RGB", (thumb, thumb), (128, 128, 128))
        sheet.paste(tile, (x, y))
        draw.text((x + 3, y + thumb + 1), f"s{f.source} f{f.frame}", fill=(220, 220, 220))
    out = Path(out_png)
    write_png(out, np.asarray(sheet), compress_level=6)
    return out


def crop_problems(fs: Faceset, folder: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(crop name, problem) for every crop of ``fs`` that is missing or is not a readable image.

    Reads each file's header only (fast); a crop cut short after its header passes here."""
    from PIL import Image, UnidentifiedImageError

    out: list[tuple[str, str]] = []
    for f in fs.faces:
        p = Path(folder) / f.file
        if not p.is_file():
            out.append((f.file, "missing"))
            continue
        try:
            with Image.open(p) as im:
                if im.size[0] < 1 or im.size[1] < 1:
                    out.append((f.file, "empty image"))
        except (UnidentifiedImageError, OSError, ValueError):
            out.append((f.file, "not a readable image"))
    return out
