"""Temporal smoothing of landmarks and the jitter measure (pure functions and one small filter).

The one-euro filter (Casiez, Roussel & Vogel, CHI 2012) is a low-pass filter whose cutoff
rises with speed: still faces get heavy smoothing (no shimmer), moving faces little (no lag).
Speeds are measured in face widths per second (``scale``), so the same settings work at any
resolution.
"""

from __future__ import annotations

import math

import numpy as np


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


def jitter(points: np.ndarray, scale: float | np.ndarray = 1.0) -> float:
    """Mean magnitude of the second difference (acceleration) of a T×N×2 point track.

    Shimmer is frame-to-frame acceleration that real motion rarely has. Divided by ``scale``
    (face width, a scalar or one per frame) it is in face widths per frame²; needs T ≥ 3.
    """
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 3:
        return float("nan")
    acc = p[2:] - 2 * p[1:-1] + p[:-2]
    mag = np.linalg.norm(acc.reshape(len(acc), -1, 2), axis=-1).mean(axis=-1)
    s = np.asarray(scale, dtype=np.float64)
    if s.ndim:
        s = s[1:-1]
    return float(np.mean(mag / s))
