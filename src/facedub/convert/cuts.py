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
changes a lot all the time raises its own bar. Violent shake (random jumps of a tenth of the frame between frames)
can fire. Cost: about 0.2 ms of CPU a frame at 512² or 1080p (see bench/bench_shots.py); the dissolve
test below adds about 0.03 ms (measured on 48² thumbnails, 2 shared cores), and one more
alignment on the rare frames that pass its blend test.

Dissolves (cross-fades) change no single frame enough to be a cut, so a second test looks at
the last ``DISSOLVE_SPAN`` + 1 thumbnails of the shot together (:func:`dissolve_score`): in a
dissolve from picture A to picture B every frame is ``(1 − a)·A + a·B`` with ``a`` growing, so
each thumbnail between the first and the last of the span lies on the straight line between
them, in order. A frame is a cut (the middle of the dissolve, roughly) when the span's ends
differ (``DISSOLVE_MIN_CHANGE`` of their energy), the frames between are such a blend (what
the blend leaves unexplained ≤ ``DISSOLVE_MAX_RESIDUAL`` of the change, ``a`` rising with
time), they lose contrast as a mix of two pictures does (at least ``DISSOLVE_MIN_DIP`` of the
dip a blend predicts: slow non-rigid motion, a head turning, can pass the blend test but keeps
its contrast) and no camera motion explains the ends (their :func:`change_score` reaches
``DISSOLVE_MIN_END_SCORE``, 0.08). Measured: 12-frame dissolves between the two synthetic
talking heads, between two GRID speakers in the same studio and between two panning synthetic
scenes are found inside the dissolve (end scores 0.09–0.65 where the blend test passes); on the
whole shared clips (3 synthetic talking heads, 1,962 frames; 11 GRID clips) nothing fires — the
talking head spans that pass the blend test score 0.027–0.054 at their ends. Camera motion fails the blend test (a moved picture is no mix of its ends once
it has moved more than its finest detail) or is explained by the alignment; light ramps and
white-balance drift barely change the gain-free grey thumbnails. After a dissolve (or a hard
cut: a fast dissolve's middle frame can be one) the test rests for two spans, so the rest of
the same dissolve is not a second cut; hard cuts are detected as before throughout. Fades to or from black are hard cuts at the black frame only
when a frame goes featureless.
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
DISSOLVE_SPAN = 8  # frames between the ends of the span a dissolve is looked for in
DISSOLVE_MIN_CHANGE = 0.01  # mean squared change of the span's ends (gain-free thumbnails), relative to their energy
DISSOLVE_MAX_RESIDUAL = 0.05  # what a blend of the ends leaves unexplained in the frames between, relative to the change
DISSOLVE_MIN_DIP = 0.6  # share of a blend's contrast dip the frames between must show
DISSOLVE_MIN_END_SCORE = 0.08  # change_score the span's ends must reach (talking heads ≤ 0.054, dissolves ≥ 0.09 measured)
_DISSOLVE_MIN_ORDER = 0.9  # correlation of the blend weights with time (a rises steadily)


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
        self._span: deque[np.ndarray] = deque(maxlen=DISSOLVE_SPAN + 1)  # the shot's last thumbnails
        self._rest = 0  # frames before the dissolve test runs again
        self.last_score = 0.0
        self.last_kind = ""  # "cut" or "dissolve" when update() last returned True

    def reset(self) -> None:
        self._recent.clear()
        self._previous = None
        self._span.clear()
        self._rest = 0
        self.last_score = 0.0
        self.last_kind = ""

    def update(self, rgb: np.ndarray) -> bool:
        sig = signature(rgb)
        prev, self._previous = self._previous, sig
        self._span.append(sig)
        if prev is None:
            return False
        score = change_score(prev, sig)
        self.last_score = score
        if is_cut(score, list(self._recent), self.threshold, self.ratio):
            self._recent.clear()  # a new shot starts its own history
            self._span.clear()
            self._span.append(sig)
            self._rest = 2 * DISSOLVE_SPAN  # a hard cut inside a dissolve is its cut
            self.last_kind = "cut"
            return True
        self._recent.append(score)
        self._rest = max(0, self._rest - 1)
        if self._rest == 0 and len(self._span) == self._span.maxlen and self._dissolve():
            # The scores of the dissolve so far stay the bar for hard cuts: its remaining
            # frames change as much again, and are no new shot.
            self._span.clear()
            self._span.append(sig)
            self._rest = 2 * DISSOLVE_SPAN
            self.last_kind = "dissolve"
            return True
        return False

    def _dissolve(self) -> bool:
        span = list(self._span)
        if dissolve_score(span) is None:
            return False
        # The blend test passed: the ends must also be two pictures, not one moved by the camera
        # or a talking head that moved (both can pass the blend test over 8 frames).
        return change_score(span[0], span[-1]) >= max(self.threshold, DISSOLVE_MIN_END_SCORE)


def dissolve_score(span: list[np.ndarray]) -> float | None:
    """How well the thumbnails of ``span`` (oldest first) read as a dissolve from the first to
    the last: the relative residual of the best blend of the ends (0: a perfect cross-fade),
    or None when they do not (ends too alike, frames between not a blend, or not in order)."""
    inner = (slice(_MARGIN, -_MARGIN), slice(_MARGIN, -_MARGIN))
    first, last = span[0][inner].astype(np.float64), span[-1][inner].astype(np.float64)
    change = last - first
    energy = float(np.mean(change * change))
    scale = 0.5 * float(np.mean(first * first) + np.mean(last * last))
    if energy < DISSOLVE_MIN_CHANGE * scale:
        return None
    weights, residual, dip, blend_dip = [], 0.0, 0.0, 0.0
    var_first, var_last, var_change = float(first.var()), float(last.var()), float(change.var())
    for sig in span[1:-1]:
        x = sig[inner].astype(np.float64)
        d = x - first
        a = float(np.sum(d * change)) / (energy * change.size)
        r = d - a * change
        weights.append(a)
        residual += float(np.mean(r * r))
        # A mix (1-a)·A + a·B has less contrast than either end: its variance falls short of
        # (1-a)·var A + a·var B by a(1-a)·var(B-A). A moving picture keeps its contrast.
        dip += (1.0 - a) * var_first + a * var_last - float(x.var())
        blend_dip += a * (1.0 - a) * var_change
    residual /= max(1, len(weights)) * energy
    if residual > DISSOLVE_MAX_RESIDUAL or not weights:
        return None
    if blend_dip <= 0.0 or dip < DISSOLVE_MIN_DIP * blend_dip:
        return None
    w = np.asarray([0.0, *weights, 1.0])
    t = np.arange(len(w), dtype=np.float64)
    if np.std(w) < 1e-6 or float(np.corrcoef(t, w)[0, 1]) < _DISSOLVE_MIN_ORDER:
        return None
    return residual


def is_cut(score: float, recent: list[float], threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO) -> bool:
    """The adaptive rule: ``score`` reaches ``threshold`` and ``ratio`` × the mean of ``recent``."""
    level = float(np.mean(recent)) if recent else 0.0
    return score >= threshold and score >= ratio * level


def find_cuts(frames: list[np.ndarray] | tuple[np.ndarray, ...], threshold: float = DEFAULT_THRESHOLD, ratio: float = DEFAULT_RATIO) -> list[int]:
    """Indices of the frames that start a new shot (offline form of :class:`CutDetector`)."""
    det = CutDetector(threshold, ratio)
    return [i for i, f in enumerate(frames) if det.update(f)]
