"""Hard shot-cut detection (pure numpy/OpenCV, no state beyond a short history).

A frame starts a new shot when it cannot be explained as the previous frame seen by a moving
camera. Each frame is reduced to a 48×48 grey thumbnail, slightly blurred and divided by its
mean (so a brightness ramp or a white-balance drift changes nothing); the previous thumbnail is
aligned onto it with an affine motion model (OpenCV's ECC, leaving out a border of 1/8 where
picture enters, leaves or rotated corners move), which absorbs pans, zooms and rolls; what the
best alignment still cannot explain is the change score, ``1 − correlation`` in [0, 1] (1 when
the alignment fails, as it does between unrelated pictures).

Measured on the shared clips (512² talking heads moved by known transforms, also scaled to
1920×1080, and 360×288 GRID speakers): inside a shot the score stays at or below 0.015
(talking, blinking, pans of up to 48 px a frame at 512², zoom 0.6→1.4× over 10 frames, roll
±30° over 12 frames, shake of ±15 px and ±2° a frame, brightness ×0.5→×1.4, white-balance
drift, noise); a hard cut scores 0.098–1.0 between two different GRID speakers in the same
blue studio (the hardest case; 0.049 between two takes of the same speaker), 1.0 between
unrelated pictures. A frame is a cut when its score reaches ``threshold`` (0.03) *and*
``ratio`` times the mean score of the last ``window`` frames of the shot, so footage that
changes a lot all the time raises its own bar. Not detected: dissolves and fades (no single
frame differs enough). Violent shake (random jumps of a tenth of the frame between frames)
can fire. Cost: about 0.2 ms of CPU a frame at 512² or 1080p (see bench/bench_shots.py).
"""

from __future__ import annotations

from collections import deque

import numpy as np

THUMB = 48  # thumbnail side (px)
_MARGIN = THUMB // 8  # border left out of the comparison (picture entering or leaving, rotated corners)
DEFAULT_THRESHOLD = 0.03  # score a cut must reach (inside a shot ≤ 0.015, cuts ≥ 0.06 measured)
DEFAULT_RATIO = 3.0  # ... and this many times the shot's recent mean score
DEFAULT_WINDOW = 8  # frames of the shot's recent history
_SETTLED = 0.02  # change score under which the short alignment is taken as final
_FLAT = 1e-3  # normalised thumbnail standard deviation under which a frame is featureless (black, a flat card)


def signature(rgb: np.ndarray) -> np.ndarray:
    """48×48 float32 grey thumbnail of an H×W×3 uint8 frame, divided by its mean (gain-free)."""
    import cv2

    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 image, got {img.shape}")
    # Big frames go to 4× the thumbnail first (bilinear reads only the pixels around each
    # sample: 0.1 ms at 1080p, where INTER_AREA straight to the thumbnail reads every pixel, 7 ms).
    if img.shape[0] > 4 * THUMB or img.shape[1] > 4 * THUMB:
        img = cv2.resize(np.ascontiguousarray(img), (4 * THUMB, 4 * THUMB), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    t = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    # A little blur widens the reach of the alignment: fast pans and shake converge in few
    # iterations (without it, 20 iterations left a 48 px/frame pan at 0.08 instead of 0.005).
    t = cv2.GaussianBlur(t, (0, 0), 1.0)
    return t / (float(t.mean()) + 1.0)


def change_score(previous: np.ndarray, current: np.ndarray) -> float:
    """How much of ``current`` a camera motion of ``previous`` cannot explain: 0 (same picture,
    moved) … 1 (unrelated). Both are :func:`signature` thumbnails."""
    import cv2

    a, b = np.asarray(current, np.float32), np.asarray(previous, np.float32)
    flat_a, flat_b = float(a.std()) < _FLAT, float(b.std()) < _FLAT
    if flat_a or flat_b:
        # Featureless frames have no structure to align: the same flat picture is no change,
        # a flat frame next to a real picture is one.
        return 0.0 if flat_a and flat_b else 1.0
    warp = np.eye(2, 3, dtype=np.float32)
    inner = np.zeros(a.shape, np.uint8)
    inner[_MARGIN:-_MARGIN, _MARGIN:-_MARGIN] = 1
    score = 1.0
    # A short alignment settles most frames; one that leaves much unexplained gets a longer
    # run from where it stopped before the frame counts as changed.
    for criteria in ((cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 1e-3), (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)):
        try:
            cc, warp = cv2.findTransformECC(a, b, warp, cv2.MOTION_AFFINE, criteria, inner, 1)
        except cv2.error:  # no alignment converges: unrelated pictures
            return 1.0
        score = float(min(1.0, max(0.0, 1.0 - cc)))
        if score < _SETTLED:
            break
    return score


class CutDetector:
    """Feeds frames in order; ``update(rgb)`` is True on the first frame of a new shot.

    The first frame of the video is not a cut. ``threshold`` and ``ratio`` as in the module
    docstring; ``reset()`` forgets the history (a new video).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO, window: int = DEFAULT_WINDOW) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"cut threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.ratio = float(ratio)
        self._recent: deque[float] = deque(maxlen=max(1, window))
        self._previous: np.ndarray | None = None
        self.last_score = 0.0

    def reset(self) -> None:
        self._recent.clear()
        self._previous = None
        self.last_score = 0.0

    def update(self, rgb: np.ndarray) -> bool:
        sig = signature(rgb)
        prev, self._previous = self._previous, sig
        if prev is None:
            return False
        score = change_score(prev, sig)
        self.last_score = score
        if is_cut(score, list(self._recent), self.threshold, self.ratio):
            self._recent.clear()  # a new shot starts its own history
            return True
        self._recent.append(score)
        return False


def is_cut(score: float, recent: list[float], threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO) -> bool:
    """The adaptive rule: ``score`` reaches ``threshold`` and ``ratio`` × the mean of ``recent``."""
    level = float(np.mean(recent)) if recent else 0.0
    return score >= threshold and score >= ratio * level


def find_cuts(frames: list[np.ndarray] | tuple[np.ndarray, ...], threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO) -> list[int]:
    """Indices of the frames that start a new shot (offline form of :class:`CutDetector`)."""
    det = CutDetector(threshold, ratio)
    return [i for i, f in enumerate(frames) if det.update(f)]
