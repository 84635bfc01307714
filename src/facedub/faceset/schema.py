"""Versioned faceset records. JSON only: ``to_dict``/``from_dict`` round-trip exactly.

Coordinates: ``bbox`` and ``landmarks`` are in *frame* pixels; ``affine`` is the 2×3
frame → crop matrix of :func:`facedub.faces.align.align_matrix`, so crop-space landmarks are
``transform_points(landmarks, affine)``.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SourceRecord:
    """One input file (a video, or one image)."""

    path: str  # as given by the user, absolute
    sha256: str
    kind: str  # "video" | "image"
    frames: int | None = None  # decoded frame count (videos), None while unknown
    fps: float | None = None
    width: int = 0
    height: int = 0
    done_until: int = -1  # highest frame index fully processed (resume starts after it)
    complete: bool = True  # False while an extraction of this source is unfinished


@dataclass(frozen=True)
class FaceRecord:
    """One aligned face."""

    file: str  # crop PNG, relative to the faceset folder (e.g. "faces/s00_f000012_0.png")
    source: int  # index into Faceset.sources
    frame: int  # frame index in the source (0 for images)
    time: float  # seconds from the start of the source
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels
    landmarks: tuple[tuple[float, float], ...]  # 68 iBUG-layout points, frame pixels
    affine: tuple[tuple[float, ...], ...]  # 2×3 frame → crop
    det_score: float
    sharpness: float  # variance of the Laplacian of the grey crop; higher is sharper
    descriptor: tuple[float, ...] | None = None  # 128-d dlib identity descriptor, or None when skipped
    pose: tuple[float, float, float] | None = None  # yaw, pitch, roll in degrees
    track: int = 0  # identity cluster / track id within the source

    def landmarks_array(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float64)

    def affine_array(self) -> np.ndarray:
        return np.asarray(self.affine, dtype=np.float64)

    def descriptor_array(self) -> np.ndarray | None:
        return None if self.descriptor is None else np.asarray(self.descriptor, dtype=np.float64)


@dataclass(frozen=True)
class Faceset:
    id: str  # stable id: derived from the sources' hashes and the settings
    sources: tuple[SourceRecord, ...] = ()
    faces: tuple[FaceRecord, ...] = ()
    crop_size: int = 256
    settings: dict[str, Any] = field(default_factory=dict)  # extraction settings used
    consent: dict[str, Any] | None = None  # the bound consent record (see facedub.safety.consent)
    removed: tuple[str, ...] = ()  # crop files a person removed by hand (never re-added on resume)
    created: str = ""  # ISO 8601 UTC
    tool_version: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` gives, built directly: asdict copies every landmark
        tuple one value at a time (≈0.7 ms a face, half a second per rewrite of a faceset of
        800 faces); immutable values are shared here and only mutable ones deep-copied."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("sources", "faces"):
                out[f.name] = tuple(_record_dict(r) for r in v)
            else:
                out[f.name] = _copied(v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Faceset":
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported faceset schema version {version!r} (this facedub reads {SCHEMA_VERSION})")
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["sources"] = tuple(SourceRecord(**s) for s in d.get("sources", ()))
        kw["faces"] = tuple(_face_from_dict(f) for f in d.get("faces", ()))
        kw["removed"] = tuple(d.get("removed", ()))
        return cls(**kw)


_SCALARS = (str, int, float, bool, type(None))


def _copied(v: Any) -> Any:
    """``v`` itself when it cannot change (scalars, and tuples, which by the schema hold only
    numbers, strings and tuples of them), else the deep copy asdict would make."""
    if isinstance(v, _SCALARS) or type(v) is tuple:
        return v
    return deepcopy(v)


def _record_dict(rec: Any) -> dict[str, Any]:
    if not is_dataclass(rec):
        return deepcopy(rec)
    return {f.name: _copied(getattr(rec, f.name)) for f in fields(rec)}


def _tuplify(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return tuple(_tuplify(v) for v in x)
    return x


def _face_from_dict(d: dict[str, Any]) -> FaceRecord:
    known = {f.name for f in fields(FaceRecord)}
    kw = {k: _tuplify(v) for k, v in d.items() if k in known}
    return FaceRecord(**kw)
