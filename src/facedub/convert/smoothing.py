"""Temporal filtering of the target's landmarks, and the one jitter measure of the project.

- :class:`OneEuroFilter` / :func:`one_euro`: the landmark low-pass filter;
- :class:`Smoother`: convert's per-shot filter (one-euro or none), measuring jitter as it goes;
- :class:`Bridger`: fills short face dropouts by interpolating the landmarks;
- :func:`second_difference` is *the* jitter measure: :func:`jitter` (a whole track),
  :class:`JitterMeter` (convert's running figures, ``ConvertSummary.jitter_raw/_smoothed``)
  and :func:`facedub.evaluate.metrics.second_difference_jitter` (eval, bench/robustness.py)
  all call it.

The one-euro filter (Casiez, Roussel & Vogel, CHI 2012) is a low-pass filter whose cutoff
rises with speed: still faces get heavy smoothing (no shimmer), moving faces little (no lag).
Speeds are measured in face widths per second (``scale``), so the same settings work at any
resolution.
"""

from __future__ import annotations

import math
from typing import Generic, Protocol, TypeVar

import numpy as np

from facedub.convert.config import ConvertConfig
from facedub.faces.align import points5_from_68


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-euro filter over arrays of any fixed shape (e.g. 68×2 landmarks), element-wise."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 8.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filter the sample ``x`` taken at time ``t`` seconds; ``scale`` = units per face width."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        dx_hat = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat) / max(scale, 1e-9)
        a = _alpha(cutoff, dt)
        x_hat = a * x + (1 - a) * self._x
        self._x, self._dx, self._t = x_hat, dx_hat, t
        return x_hat.copy()


def one_euro(signal: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 8.0, scale: float = 1.0) -> np.ndarray:
    """Filter a whole T×… signal sampled at ``fps`` (offline form of :class:`OneEuroFilter`)."""
    f = OneEuroFilter(min_cutoff, beta)
    sig = np.asarray(signal, dtype=np.float64)
    return np.stack([f(sig[i], i / fps, scale) for i in range(len(sig))])


def interpolate(a: np.ndarray, b: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` evenly spaced arrays strictly between ``a`` and ``b`` (linear)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return [a + (b - a) * (k / (n + 1)) for k in range(1, n + 1)]


def second_difference(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, scale: float = 1.0) -> float:
    """Mean length of the points' second difference ``x[t+1] − 2·x[t] + x[t−1]`` (N×2 arrays),
    divided by ``scale``: the jitter of one frame triple.

    Shimmer is frame-to-frame acceleration that real motion rarely has; any motion at constant
    velocity scores 0. With ``scale`` a face width (or inter-ocular distance) it is in those
    units per frame².
    """
    p, c, n = (np.asarray(a, dtype=np.float64) for a in (prev, cur, nxt))
    if not (p.shape == c.shape == n.shape):
        raise ValueError("jitter needs three arrays of one shape")
    return float(np.linalg.norm((n - 2.0 * c + p).reshape(-1, 2), axis=1).mean() / scale)


def jitter(points: np.ndarray, scale: float | np.ndarray = 1.0) -> float:
    """Mean :func:`second_difference` over a T×N×2 point track (needs T ≥ 3, else NaN).

    ``scale`` is a scalar or one value per frame (the middle frame's of each triple is used).
    """
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        return float("nan")
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (len(p),))
    return float(np.mean([second_difference(p[t - 1], p[t], p[t + 1], float(s[t])) for t in range(1, len(p) - 1)]))


class JitterMeter:
    """Running :func:`second_difference` of the raw and the smoothed 5-point tracks over face
    runs (a run ends at ``reset``: a dropout or a cut)."""

    def __init__(self) -> None:
        self.raw: list[np.ndarray] = []
        self.smooth: list[np.ndarray] = []
        self.scale: list[float] = []
        self.sum_raw = self.sum_smooth = 0.0
        self.n = 0

    def add(self, raw5: np.ndarray, smooth5: np.ndarray, scale: float) -> None:
        self.raw.append(raw5)
        self.smooth.append(smooth5)
        self.scale.append(scale)
        if len(self.raw) >= 3:
            self.sum_raw += second_difference(*self.raw[-3:], scale=self.scale[-2])
            self.sum_smooth += second_difference(*self.smooth[-3:], scale=self.scale[-2])
            self.n += 1
            del self.raw[0], self.smooth[0], self.scale[0]

    def reset(self) -> None:
        self.raw, self.smooth, self.scale = [], [], []

    def result(self) -> tuple[float | None, float | None]:
        """(raw, smoothed) mean jitter in face widths per frame², or (None, None) before 3 frames."""
        if self.n == 0:
            return None, None
        return self.sum_raw / self.n, self.sum_smooth / self.n


# ---------------------------------------------------------------------------------------
# Convert's landmark track: bridging dropouts, smoothing
# ---------------------------------------------------------------------------------------
class Tracked(Protocol):
    """What the temporal filters need of a frame's record (convert's ``_Item``)."""

    index: int  # frame number
    lm: np.ndarray | None  # target's 68 landmarks as detected, None without a face
    bridged: bool  # landmarks interpolated over a dropout
    cut: bool  # first frame of a new shot


T = TypeVar("T", bound=Tracked)


class Bridger(Generic[T]):
    """Fills face dropouts of at most ``max_gap`` frames by interpolating the landmarks, inside
    a shot only (an item marked ``cut`` ends the shot before it)."""

    def __init__(self, max_gap: int) -> None:
        self.max_gap = max_gap
        self._last: T | None = None
        self._held: list[T] = []

    def push(self, item: T) -> list[T]:
        if item.cut:
            # Never bridge across a cut: frames held before it stay without a face.
            held, self._held, self._last = self._held, [], None
            return held + self._push(item)
        return self._push(item)

    def _push(self, item: T) -> list[T]:
        if item.lm is None:
            if self._last is None or self.max_gap == 0:
                return [item]
            self._held.append(item)
            if len(self._held) > self.max_gap:
                out, self._held, self._last = self._held, [], None
                return out
            return []
        out: list[T] = []
        if self._held:
            assert self._last is not None and self._last.lm is not None
            a, b = self._last.lm, item.lm
            # A face that jumped (another person, a cut) is not bridged.
            width = np.ptp(a[:, 0]) + 1e-6
            if np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) < 0.5 * width:
                for h, lm in zip(self._held, interpolate(a, b, len(self._held))):
                    h.lm, h.bridged = lm, True
            out, self._held = self._held, []
        self._last = item
        out.append(item)
        return out

    def flush(self) -> list[T]:
        out, self._held, self._last = self._held, [], None
        return out


class Smoother:
    """Convert's landmark filter for one face run (``reset`` at a dropout or a cut): one-euro
    (``config.smooth``) in face widths per second, measuring raw and smoothed jitter."""

    def __init__(self, config: ConvertConfig, fps: float) -> None:
        self.enabled = config.smooth == "one-euro"
        self.filter = OneEuroFilter(config.min_cutoff, config.beta)
        self.fps = fps if fps > 0 else 25.0
        self.jitter = JitterMeter()

    def reset(self) -> None:
        self.filter.reset()
        self.jitter.reset()

    def __call__(self, item: Tracked) -> np.ndarray:
        assert item.lm is not None
        p5 = points5_from_68(item.lm)
        scale = float(np.linalg.norm(p5[1] - p5[0])) * 2.0 + 1e-6  # ≈ a face width
        out = self.filter(item.lm, item.index / self.fps, scale) if self.enabled else item.lm
        if not item.bridged:
            self.jitter.add(p5, points5_from_68(out), scale)
        return out
