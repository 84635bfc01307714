"""Pure quality metrics on landmarks, descriptors and pixels. No I/O, no models.

Every function takes numpy arrays and returns plain floats (or arrays), so the metrics can be
tested on hand-made inputs. Landmarks are 68×2 iBUG-layout points in frame pixels.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from facedub.faces.align import LM68_LEFT_BROW, LM68_LEFT_EYE, LM68_MOUTH, LM68_RIGHT_BROW, LM68_RIGHT_EYE, umeyama
from facedub.faces.identity import SAME_PERSON_DISTANCE  # dlib's same-person threshold (0.6)

# Points that barely move with expression: the four eye corners and the nose (bridge, tip and
# base). The similarity transform between two faces is fitted on these alone, so that an open
# mouth or raised brows are not partly "explained away" as a change of scale or position.
RIGID_POINTS: tuple[int, ...] = (36, 39, 42, 45, 27, 28, 29, 30, 31, 32, 33, 34, 35)

# Points that carry expression: brows, eyes (lids) and mouth (lips). The jaw contour is left
# out (its points slide along the silhouette with head turns and differ between identities),
# and so is the nose (rigid).
EXPRESSION_POINTS: tuple[int, ...] = tuple(LM68_RIGHT_BROW + LM68_LEFT_BROW + LM68_RIGHT_EYE + LM68_LEFT_EYE + LM68_MOUTH)

# PSNR of identical images is infinite; JSON has no infinity, so PSNR is capped here (dB).
PSNR_CAP = 100.0


def _lm(points: np.ndarray) -> np.ndarray:
    a = np.asarray(points, dtype=np.float64)
    if a.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {a.shape}")
    return a


def inter_ocular(lm68: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45), the 300-W normaliser."""
    lm = _lm(lm68)
    return float(np.linalg.norm(lm[45] - lm[36]))


def expression_error(
    output_lm: np.ndarray,
    target_lm: np.ndarray,
    rigid: Sequence[int] = RIGID_POINTS,
    points: Sequence[int] = EXPRESSION_POINTS,
) -> float:
    """Mean distance between expression points of two faces, per unit of inter-ocular distance.

    The output landmarks are first mapped onto the target's by the similarity transform
    (rotation, scale, shift) fitted on the ``rigid`` points, which removes where the face is,
    how big it is and its in-plane tilt (head pose has its own metric). What is left is the
    shape of brows, lids and lips: the expression. 0 means identical; on an adult face
    (outer-eye-corner distance ≈ 90 mm) 0.05 is a mean offset of about 4.5 mm per point.
    """
    out, tgt = _lm(output_lm), _lm(target_lm)
    iod = inter_ocular(tgt)
    if iod <= 1e-6:
        return math.nan
    rigid = list(rigid)
    m = umeyama(out[rigid], tgt[rigid])
    mapped = out @ m[:2, :2].T + m[:2, 2]
    pts = list(points)
    return float(np.linalg.norm(mapped[pts] - tgt[pts], axis=1).mean() / iod)


def reference_rigid(lm68: np.ndarray, rigid: Sequence[int] = RIGID_POINTS) -> np.ndarray:
    """The rigid points of a face, centred and scaled to an inter-ocular distance of 1.

    Used as the common frame in which :func:`canonical_shape` puts every face of a video.
    """
    lm = _lm(lm68)
    iod = inter_ocular(lm)
    if iod <= 1e-6:
        raise ValueError("degenerate landmarks (eye corners coincide)")
    pts = lm[list(rigid)]
    return (pts - pts.mean(axis=0)) / iod


def canonical_shape(lm68: np.ndarray, reference: np.ndarray, rigid: Sequence[int] = RIGID_POINTS) -> np.ndarray:
    """All 68 points mapped by the similarity that puts the ``rigid`` points onto ``reference``.

    With a reference from :func:`reference_rigid`, the result is in inter-ocular units and
    free of the face's position, size and in-plane tilt.
    """
    lm = _lm(lm68)
    m = umeyama(lm[list(rigid)], np.asarray(reference, dtype=np.float64))
    return lm @ m[:2, :2].T + m[:2, 2]


def expression_dynamics(shapes: np.ndarray, points: Sequence[int] = EXPRESSION_POINTS) -> np.ndarray:
    """T×K×2 deviations of each frame's expression points from the video's median shape.

    ``shapes`` is T×68×2 canonical shapes (:func:`canonical_shape`) of one face over time.
    The median shape stands for the person's resting face, so what remains is expression
    (mouth opening, blinks, brow raises) and not the person's build.
    """
    s = np.asarray(shapes, dtype=np.float64)
    if s.ndim != 3 or s.shape[1:] != (68, 2):
        raise ValueError(f"expected T×68×2 shapes, got {s.shape}")
    pts = list(points)
    return s[:, pts] - np.median(s[:, pts], axis=0, keepdims=True)


def expression_dynamics_error(output_shapes: np.ndarray, target_shapes: np.ndarray, points: Sequence[int] = EXPRESSION_POINTS) -> np.ndarray:
    """Per-frame mean distance between output and target expression deviations (T,), IOD units.

    Identity-neutral: a face with another person's eye or lip shape but the same movements
    scores 0. A face frozen in its resting expression scores :func:`expression_motion` of
    the target; a face with unrelated movements scores about √2 times that.
    """
    do = expression_dynamics(output_shapes, points)
    dt = expression_dynamics(target_shapes, points)
    if do.shape != dt.shape:
        raise ValueError("output and target shapes differ in length")
    return np.linalg.norm(do - dt, axis=2).mean(axis=1)


def expression_motion(shapes: np.ndarray, points: Sequence[int] = EXPRESSION_POINTS) -> np.ndarray:
    """Per-frame mean distance of expression points from the median shape (T,): how much the face moves."""
    return np.linalg.norm(expression_dynamics(shapes, points), axis=2).mean(axis=1)


def second_difference_jitter(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, scale: float = 1.0) -> float:
    """Mean |x[t+1] - 2·x[t] + x[t-1]| over points (N×2) or pixels, divided by ``scale``.

    A second difference is zero for any motion at constant velocity, so steady head turns and
    slow expression changes cost little while frame-to-frame shaking and flicker cost a lot.
    For N×2 point arrays the norm of each point's 2-D second difference is averaged.
    """
    p, c, n = (np.asarray(a, dtype=np.float64) for a in (prev, cur, nxt))
    if not (p.shape == c.shape == n.shape):
        raise ValueError("jitter needs three arrays of one shape")
    d = n - 2.0 * c + p
    if d.ndim == 2 and d.shape[1] == 2:
        v = np.linalg.norm(d, axis=1).mean()
    else:
        v = np.abs(d).mean()
    return float(v / scale)


def masked_second_difference(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute temporal second difference of grey pixels inside ``mask`` (H×W bool).

    Images are H×W or H×W×3 uint8/float; colour images are converted to grey (ITU-R 601 luma).
    Units are grey levels (0..255). NaN when the mask is empty.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return math.nan
    g = [_grey(a)[m] for a in (prev, cur, nxt)]
    return float(np.abs(g[2] - 2.0 * g[1] + g[0]).mean())


def _grey(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    return a


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two images, over ``mask`` (H×W bool) if given.

    Capped at :data:`PSNR_CAP` (identical pixels). NaN when the mask is empty.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"psnr needs images of one shape, got {x.shape} and {y.shape}")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return math.nan
        x, y = x[m], y[m]
    mse = float(((x - y) ** 2).mean())
    if mse <= 0.0:
        return PSNR_CAP
    return float(min(PSNR_CAP, 10.0 * math.log10(peak * peak / mse)))


def descriptor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two 128-d descriptors (dlib's measure)."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def mean_descriptor(descriptors: Iterable[np.ndarray]) -> np.ndarray:
    """Mean of descriptors (the usual dlib "person" template). ValueError when there are none."""
    arr = [np.asarray(d, dtype=np.float64).reshape(-1) for d in descriptors]
    if not arr:
        raise ValueError("no descriptors to average")
    return np.mean(np.stack(arr), axis=0)


def reads_as_source(dist_source: float, dist_target: float, threshold: float = SAME_PERSON_DISTANCE) -> bool:
    """True when a face is closer to the source than to the target AND within ``threshold`` of the source."""
    return bool(dist_source < dist_target and dist_source < threshold)


def rotation_angle_deg(r_a: np.ndarray, r_b: np.ndarray) -> float:
    """Geodesic angle between two 3×3 rotation matrices, in degrees (0..180)."""
    r = np.asarray(r_a, dtype=np.float64) @ np.asarray(r_b, dtype=np.float64).T
    c = (np.trace(r) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def angle_difference_deg(a: float, b: float) -> float:
    """|a - b| for angles in degrees, wrapped into 0..180."""
    d = (a - b + 180.0) % 360.0 - 180.0
    return float(abs(d))


def ratio(num: float, den: float) -> float:
    """num / den, NaN when either is NaN or den is 0."""
    if not (math.isfinite(num) and math.isfinite(den)) or den <= 0.0:
        return math.nan
    return float(num / den)


def summarise(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """mean, median, p95, min, max and count of the finite values (None for empty)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "median": None, "p95": None, "min": None, "max": None, "count": 0}
    return {
        "mean": float(v.mean()),
        "min": float(v.min()),
        "median": float(np.median(v)),
        "p95": float(np.percentile(v, 95)),
        "max": float(v.max()),
        "count": int(v.size),
    }
