"""Which face in a frame is the target person's: identity checks per face track.

:class:`TargetChooser` compares faces with the model's stored descriptor of the person whose
face is replaced (:func:`target_descriptor`), but computes a descriptor only when a track is
new, periodically, after a cut, or when the track may have changed hands (its box jumps, its
look changes, it stops overlapping another face); in between a track keeps its verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from facedub.convert.config import ConvertConfig
from facedub.faces.align import align_matrix, points5_from_68


# Shares of the face's box: a track whose box moves by more than this between frames, or
# whose size changes by more than this factor, is checked again (someone else may hold it).
JUMP_SHIFT = 0.5
JUMP_SCALE = 1.5
# Mean |difference| of a track's 16×16 aligned appearance thumbnails (gain-free) from one frame
# to the next above which the track is checked again. Measured: one person from frame to frame
# ≤ 0.03 (GRID) and ≤ 0.11 (512² talking head; 99 % under 0.09); two different people ≥ 0.12
# (GRID speakers in the same studio) and 0.52 (aiface1 / aiface2). A false alarm costs one
# descriptor; a miss lets another person keep the swap until the next periodic check.
APPEARANCE_CHANGE = 0.1
# How much farther than ``max_distance`` a track already taken for the target may measure on a
# periodic re-check and stay taken (no sign of another person: no jump, no change of look).
HOLD_MARGIN = 0.1


def appearance(rgb: np.ndarray, lm68: np.ndarray) -> np.ndarray:
    """16×16 float32 aligned thumbnail of a face divided by its mean (brightness-free): what a
    track looks like, compared from frame to frame to notice another person taking it over."""
    import cv2

    a = align_matrix(points5_from_68(np.asarray(lm68, dtype=np.float64)), 64)
    t = cv2.resize(cv2.warpAffine(rgb, a, (64, 64), flags=cv2.INTER_LINEAR), (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
    return t / (float(t.mean()) + 1.0)


@dataclass
class TrackState:
    checked: int  # frame of the last identity check
    distance: float  # descriptor distance to the target then
    box: tuple[float, float, float, float]  # box in the previous frame
    look: np.ndarray  # appearance thumbnail in the previous frame
    overlapped: bool  # overlapped another face in the previous frame
    target: bool  # taken for the target person at the last check


def _box_jumped(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    size = max(min(wa, ha), 1.0)
    shift = float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))
    ratio = max(wa * ha, 1.0) / max(wb * hb, 1.0)
    return shift > JUMP_SHIFT * size or not (1 / JUMP_SCALE**2 <= ratio <= JUMP_SCALE**2)


def _overlaps(box: tuple[float, ...], others: list[tuple[float, ...]]) -> bool:
    return any(min(box[2], o[2]) > max(box[0], o[0]) and min(box[3], o[3]) > max(box[1], o[1]) for o in others)


class TargetChooser:
    """Decides in every frame which detected face, if any, is the target person's.

    With the model's target descriptor (dlib, the mean over the target faceset), a face is
    taken only if its descriptor lies within ``max_distance`` of it — also when it is alone in
    the frame, so after a cut to someone else nobody is swapped. A descriptor costs 100–250 ms,
    so it is computed per face *track* (the detector's track ids) and cached: when the track is
    first seen, every ``identity_every`` frames, after a cut (``reset``), and at once when the
    track may have changed hands — its box jumps, its appearance thumbnail changes abruptly
    (two people swapping places under one track id), or it stops overlapping another face (two
    people crossing). Faces without a track id are checked in every frame. Among several
    matches the closest is taken. A track taken for the target and unchanged since keeps it on
    a periodic re-check up to ``max_distance + HOLD_MARGIN``.

    Without a target descriptor (models trained before descriptors were stored): the only face,
    or the largest of several, unchecked (the summary says so).

    Given each frame's number (``choose(rgb, faces, index)``, as image sequences do), the
    periodic re-check falls on fixed frame numbers — once in every block of ``identity_every``
    frames — rather than ``identity_every`` frames after the track's last check, so a range
    rendered on its own re-checks on the same frames as the whole shot.
    """

    def __init__(self, target_descriptor: np.ndarray | None, config: ConvertConfig, encoder_factory: Callable[[], Any] | None = None) -> None:
        self.target = None if target_descriptor is None else np.asarray(target_descriptor, dtype=np.float64)
        self.every = max(1, config.identity_every)
        self.max_distance = config.max_distance
        self._factory = encoder_factory
        self._encoder: Any = None
        self._tracks: dict[int, TrackState] = {}
        self._frame = 0
        self._index: int | None = None
        self.descriptor_calls = 0
        self.seconds = 0.0  # time spent on identity (descriptors and appearance thumbnails)

    def reset(self) -> None:
        """A cut: forget every track's identity, so each face is checked again."""
        self._tracks.clear()

    def _distance(self, rgb: np.ndarray, face: Any) -> float:
        if self._encoder is None:
            if self._factory is not None:
                self._encoder = self._factory()
            else:
                from facedub.faces.identity import IdentityEncoder

                self._encoder = IdentityEncoder()
        self.descriptor_calls += 1
        d = np.asarray(self._encoder.descriptor(rgb, face.landmarks68), dtype=np.float64)
        return float(np.linalg.norm(d - self.target))

    def choose(self, rgb: np.ndarray, faces: list[Any], index: int | None = None) -> Any | None:
        self._frame += 1
        self._index = index
        if self.target is None:
            if not faces:
                return None
            return max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        t0 = time.perf_counter()
        try:
            return self._choose(rgb, faces)
        finally:
            self.seconds += time.perf_counter() - t0

    def _choose(self, rgb: np.ndarray, faces: list[Any]) -> Any | None:
        best, best_d = None, float("inf")
        boxes = [tuple(float(v) for v in f.bbox) for f in faces]
        seen: dict[int, TrackState] = {}
        for k, f in enumerate(faces):
            track = int(getattr(f, "track", -1))
            box = boxes[k]
            overlapped = _overlaps(box, boxes[:k] + boxes[k + 1 :])
            look = appearance(rgb, f.landmarks68) if track >= 0 else None
            st = self._tracks.get(track) if track >= 0 else None
            changed_hands = (
                st is None
                or _box_jumped(st.box, box)
                or (st.overlapped and not overlapped)
                or float(np.abs(look - st.look).mean()) > APPEARANCE_CHANGE  # type: ignore[operator]
            )
            if self._index is not None:
                due = st is not None and self._index // self.every != st.checked // self.every
            else:
                due = st is not None and self._frame - st.checked >= self.every
            if changed_hands or due:
                d = self._distance(rgb, f)
                checked = self._frame if self._index is None else self._index
                # A track already taken for the target, unchanged since, keeps it on a periodic
                # re-check up to ``max_distance + HOLD_MARGIN`` (a turned head measures farther).
                held = not changed_hands and st is not None and st.target and d <= self.max_distance + HOLD_MARGIN
                target = d <= self.max_distance or held
            else:
                assert st is not None
                d, checked, target = st.distance, st.checked, st.target
            if track >= 0 and look is not None:
                seen[track] = TrackState(checked, d, box, look, overlapped, target)
            if target and d < best_d:
                best, best_d = f, d
        self._tracks = seen  # tracks not in this frame are forgotten
        return best


def target_descriptor(meta: dict[str, Any], reverse: bool = False) -> np.ndarray | None:
    """Mean descriptor of the person whose face is replaced (the model's source person when reversed)."""
    d = meta.get("source_descriptor" if reverse else "target_descriptor")
    if d is None:
        return None
    arr = np.asarray(d, dtype=np.float64).reshape(-1)
    return arr if arr.size == 128 and np.isfinite(arr).all() else None
