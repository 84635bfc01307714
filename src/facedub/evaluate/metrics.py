"""Pure quality metrics on landmarks, descriptors and pixels. No I/O, no models.

Every function takes numpy arrays and returns plain floats (or arrays), so the metrics can be
tested on hand-made inputs. Landmarks are 68×2 iBUG-layout points in frame pixels.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from facedub.faces.align import LM68_LEFT_BROW, LM68_LEFT_EYE, LM68_MOUTH, LM68_RIGHT_BROW, LM68_RIGHT_EYE, umeyama
from facedub.faces.identity import MATCH_DISTANCE, SAME_PERSON_DISTANCE  # noqa: F401 - facedub's (0.5) and dlib's (0.6) thresholds; evaluate.core reads M.SAME_PERSON_DISTANCE

# Points that barely move with expression: the four eye corners and the nose (bridge, tip and
# base). The similarity transform between two faces is fitted on these alone, so that an open
# mouth or raised brows are not partly "explained away" as a change of scale or position.
RIGID_POINTS: tuple[int, ...] = (36, 39, 42, 45, 27, 28, 29, 30, 31, 32, 33, 34, 35)

# Points that carry expression: brows, eyes (lids) and mouth (lips). The jaw contour is left
# out (its points slide along the silhouette with head turns and differ between identities),
# and so is the nose (rigid).
EXPRESSION_POINTS: tuple[int, ...] = tuple(LM68_RIGHT_BROW + LM68_LEFT_BROW + LM68_RIGHT_EYE + LM68_LEFT_EYE + LM68_MOUTH)

# The inner face: brows, eyes, nose and mouth (iBUG points 17–67), without the jaw contour.
# It lies well inside any paste mask, so its detail is the new face's own.
INNER_FACE_POINTS: tuple[int, ...] = tuple(range(17, 68))

# Detail is measured after a Gaussian blur of this sigma (pixels): it keeps the facial detail a
# viewer sees (pores, lashes, lip lines at 512²) but damps pixel-level grain such as facedub's
# watermark (4 px cells of ±3 levels), which alone would add about 20 % to a face's Laplacian
# variance at sigma 0 and about 5 % at sigma 1.
DETAIL_SIGMA = 1.0

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
    from facedub.convert.smoothing import second_difference

    p, c, n = (np.asarray(a, dtype=np.float64) for a in (prev, cur, nxt))
    if not (p.shape == c.shape == n.shape):
        raise ValueError("jitter needs three arrays of one shape")
    if p.ndim == 2 and p.shape[1] == 2:
        return second_difference(p, c, n, scale)  # the one landmark jitter convert measures too
    return float(np.abs(n - 2.0 * c + p).mean() / scale)


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


def reads_as_source(dist_source: float, dist_target: float, threshold: float = MATCH_DISTANCE) -> bool:
    """True when a face is closer to the source than to the target AND within ``threshold`` of the source.

    The threshold is facedub's own same-person distance (``MATCH_DISTANCE``, 0.5), not dlib's
    looser 0.6: two different AI-generated faces of the shared test media measure 0.53–0.57
    apart, so at 0.6 a face that is not yet the source would count.
    """
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


# ------------------------------------------------------------------ what a viewer sees


def polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """H×W bool: the filled convex hull of ``points`` (N×2, x/y pixels)."""
    import cv2

    h, w = shape
    m = np.zeros((h, w), np.uint8)
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) >= 3:
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    return m.astype(bool)


def inner_face_mask(lm68: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """H×W bool: hull of the brows, eyes, nose and mouth (:data:`INNER_FACE_POINTS`)."""
    return polygon_mask(_lm(lm68)[list(INNER_FACE_POINTS)], shape)


def _bbox(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    import cv2

    x, y, bw, bh = cv2.boundingRect(np.asarray(mask, dtype=np.uint8))
    if bw == 0 or bh == 0:
        return None
    h, w = mask.shape
    return slice(max(0, y - pad), min(h, y + bh + pad)), slice(max(0, x - pad), min(w, x + bw + pad))


def detail(img: np.ndarray, mask: np.ndarray, sigma: float = DETAIL_SIGMA) -> float:
    """Variance of the Laplacian of the grey image inside ``mask``, after a Gaussian blur of ``sigma``.

    The classic focus measure (Pech-Pacheco et al. 2000): high for fine detail, near 0 for a
    blur or a flat patch. Units are grey levels². NaN when the mask is empty.
    """
    import cv2

    m = np.asarray(mask, dtype=bool)
    box = _bbox(m, pad=int(math.ceil(3 * sigma)) + 2)
    if box is None:
        return math.nan
    g = _grey(np.asarray(img)[box]).astype(np.float32)
    if sigma > 0:
        g = cv2.GaussianBlur(g, (0, 0), sigma)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
    return float(lap[m[box]].astype(np.float64).var())


def sharpness_ratio(output: np.ndarray, target: np.ndarray, mask: np.ndarray, sigma: float = DETAIL_SIGMA) -> float:
    """:func:`detail` of ``output`` ÷ that of ``target`` in the same region.

    1.0 = as much detail as the footage's own face; a Gaussian blur of 2 px on a 512² talking
    head scores about 0.2. NaN when the target region has no detail at all.
    """
    return ratio(detail(output, mask, sigma), detail(target, mask, sigma))


def _lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float L*a*b* (L in 0..100) through OpenCV's 8-bit conversion.

    The 8-bit path is table-driven and many times faster than the float one; it rounds to
    about 0.4 L* units per pixel, which the band means average away.
    """
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


def seam_step(
    output: np.ndarray,
    target: np.ndarray,
    outline: np.ndarray,
    inner: tuple[float, float],
    outer: tuple[float, float],
    sectors: int = 12,
    min_pixels: int = 8,
) -> float:
    """Colour step across the paste border that the input did not have, in CIE76 ΔE (L*a*b*).

    ``outline`` is the H×W bool region the face was pasted into (its hull); ``inner`` is a
    band of distances (pixels) inside it where the new face is fully opaque and ``outer`` a
    band outside it, where the frame is untouched. The border is cut into ``sectors`` equal
    angles around the region's centre; in each, the step is (mean L*a*b* of the inner band −
    mean of the outer band) in the output minus the same in the target, so the target's own
    edges (jaw against neck, brow against hair) cancel and only what the paste added is left.
    Returns the mean length of the per-sector steps: about 0 for a paste that continues the
    frame's colours; a ΔE of about 2.3 is the usual just-noticeable difference between two
    flat colours side by side.
    NaN when no sector has enough pixels in both bands.
    """
    import cv2

    region = np.asarray(outline, dtype=bool)
    box = _bbox(region, pad=int(math.ceil(outer[1])) + 2)
    if box is None:
        return math.nan
    reg = region[box].astype(np.uint8)
    # Distances to the other side; the frame's edge counts as outside the region.
    d_in = cv2.distanceTransform(cv2.copyMakeBorder(reg, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0), cv2.DIST_L2, 5)[1:-1, 1:-1]
    d_out = cv2.distanceTransform(1 - reg, cv2.DIST_L2, 5)
    ring_in = (reg > 0) & (d_in >= inner[0]) & (d_in < inner[1])
    ring_out = (reg == 0) & (d_out >= outer[0]) & (d_out < outer[1])
    if not ring_in.any() or not ring_out.any():
        return math.nan
    # Only the band pixels are converted to L*a*b* (the costly part) and binned by sector.
    ys, xs = np.nonzero(ring_in | ring_out)
    o_px, t_px = np.asarray(output)[box][ys, xs], np.asarray(target)[box][ys, xs]
    diff = (_lab(o_px[None]) - _lab(t_px[None]))[0].astype(np.float64)  # what the paste changed (one row: no threading)
    mom = cv2.moments(reg, binaryImage=True)
    cy, cx = mom["m01"] / mom["m00"], mom["m10"] / mom["m00"]
    sector = ((np.arctan2(ys - cy, xs - cx) + math.pi) / (2 * math.pi) * sectors).astype(np.int64) % sectors
    label = 2 * sector + ring_in[ys, xs]  # even: outer band, odd: inner band
    counts = np.bincount(label, minlength=2 * sectors)
    sums = np.stack([np.bincount(label, weights=diff[:, c], minlength=2 * sectors) for c in range(3)], axis=1)
    steps = []
    for k in range(sectors):
        n_out, n_in = counts[2 * k], counts[2 * k + 1]
        if n_in < min_pixels or n_out < min_pixels:
            continue
        step = sums[2 * k + 1] / n_in - sums[2 * k] / n_out
        steps.append(float(np.linalg.norm(step)))
    return float(np.mean(steps)) if steps else math.nan
