"""Pure alignment geometry: template, Umeyama similarity fit, warps and their inverses.

Every stage aligns faces with these functions, so a face is cropped the same way in
extract, train and convert:

* ``align_matrix(points5)`` maps a *frame* to the 256 px *crop* (``CROP_SIZE``), a
  similarity transform fitted by Umeyama's least squares to ``TEMPLATE5``.
* ``model_matrix(M, coverage, size)`` maps a frame to a *model input*: the central
  ``coverage`` share of the crop, resized to the model's ``size``. Training cuts crops the
  same way (``crop_to_model``), so a model sees identical geometry in training and
  conversion.

Matrices are 2×3 float64 arrays in OpenCV's convention (``dst = M @ [x, y, 1]``).
"""

from __future__ import annotations

import numpy as np

CROP_SIZE = 256

# Five points in crop coordinates normalised to [0, 1]: the centres of the eye on the image's
# left and on its right, the nose tip, the left and right mouth corners. Inter-ocular distance
# is a quarter of the crop; forehead to chin fits well inside it, so a coverage of 0.625 to
# 0.875 holds the whole inner face.
TEMPLATE5 = np.array(
    [
        [0.375, 0.430],
        [0.625, 0.430],
        [0.500, 0.573],
        [0.396, 0.720],
        [0.604, 0.720],
    ],
    dtype=np.float64,
)

# Index groups in the iBUG 68-point layout.
LM68_JAW = list(range(0, 17))
LM68_RIGHT_BROW = list(range(17, 22))  # subject's right = image left
LM68_LEFT_BROW = list(range(22, 27))
LM68_NOSE = list(range(27, 36))
LM68_RIGHT_EYE = list(range(36, 42))  # image left
LM68_LEFT_EYE = list(range(42, 48))  # image right
LM68_MOUTH = list(range(48, 68))


def points5_from_68(lm68: np.ndarray) -> np.ndarray:
    """The five template points from 68 iBUG landmarks (eye centres, nose tip, mouth corners)."""
    lm = np.asarray(lm68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {lm.shape}")
    return np.stack(
        [
            lm[LM68_RIGHT_EYE].mean(axis=0),
            lm[LM68_LEFT_EYE].mean(axis=0),
            lm[30],
            lm[48],
            lm[54],
        ]
    )


def face_outline(lm68: np.ndarray, forehead: float = 0.2) -> np.ndarray:
    """The 68 landmarks plus the ten eyebrow points lifted ``forehead`` × the chin-to-brow
    distance, along the chin → nose-bridge direction: a hull of these covers the forehead
    too (the landmarks stop at the brows). Training's face mask uses it with 0.2, conversion's
    paste hull with ``ConvertConfig.forehead`` (0.2 by default). ``forehead=0`` gives the
    landmarks alone."""
    pts = np.asarray(lm68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {pts.shape}")
    if forehead <= 0:
        return pts.copy()
    chin_to_brow = np.linalg.norm(pts[8] - pts[17:27].mean(0))
    up = (pts[8] - pts[27]) / max(np.linalg.norm(pts[8] - pts[27]), 1e-6)
    return np.concatenate([pts, pts[17:27] - up * forehead * chin_to_brow])


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) src → dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point
    patterns". Returns a 3×3 homogeneous matrix.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[0] < 2:
        raise ValueError("umeyama needs two matching point sets of at least 2 points")
    n, d = src.shape
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / n
    sign = np.ones(d)
    if np.linalg.det(cov) < 0:
        sign[-1] = -1  # a reflection fits better; force a proper rotation instead
    u, sv, vt = np.linalg.svd(cov)
    if np.allclose(sv, 0):
        raise ValueError("degenerate point set")
    rot = u @ np.diag(sign) @ vt
    var_s = (s_c**2).sum() / n
    scale = (sv * sign).sum() / var_s if estimate_scale else 1.0
    out = np.eye(d + 1)
    out[:d, :d] = scale * rot
    out[:d, d] = mu_d - scale * rot @ mu_s
    return out


def align_matrix(points5: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """2×3 frame → crop matrix that puts ``points5`` on the template in a ``size`` px crop."""
    return umeyama(np.asarray(points5, dtype=np.float64), TEMPLATE5 * size)[:2]


def to3x3(m: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    out[:2] = np.asarray(m, dtype=np.float64)
    return out


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine matrix, as 2×3."""
    return np.linalg.inv(to3x3(m))[:2]


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2×3 matrix that applies ``b`` first, then ``a``."""
    return (to3x3(a) @ to3x3(b))[:2]


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to N×2 points."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def scale_of(m: np.ndarray) -> float:
    """Uniform scale factor of a similarity matrix."""
    m = np.asarray(m, dtype=np.float64)
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def rotation_deg(m: np.ndarray) -> float:
    """In-plane rotation (roll) of a similarity matrix, in degrees."""
    m = np.asarray(m, dtype=np.float64)
    return float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))


def crop_to_model_matrix(coverage: float, size: int, crop_size: int = CROP_SIZE) -> np.ndarray:
    """2×3 crop → model-input matrix, exactly the geometry of :func:`crop_to_model`.

    ``crop_to_model`` cuts the whole rows and columns ``crop[lo:hi, lo:hi]`` (``inner_cut``) and
    resizes them with OpenCV, which maps pixel centres: ``x_model = (x_crop − lo + ½)·size/(hi − lo) − ½``.
    Training (its face masks), convert (the paste) and the occlusion model all use this one
    matrix, so a landmark lands on the same model pixel everywhere.
    """
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    lo, hi = inner_cut(coverage, crop_size)
    s = size / (hi - lo)
    t = (0.5 - lo) * s - 0.5
    return np.array([[s, 0.0, t], [0.0, s, t]])


def model_matrix(frame_to_crop: np.ndarray, coverage: float, size: int, crop_size: int = CROP_SIZE) -> np.ndarray:
    """2×3 frame → model-input matrix."""
    return compose(crop_to_model_matrix(coverage, size, crop_size), frame_to_crop)


def warp(image: np.ndarray, m: np.ndarray, size: int | tuple[int, int], border: str = "reflect") -> np.ndarray:
    """Warp ``image`` with the 2×3 matrix ``m`` into a ``size`` (square int, or (w, h)) image.

    Bilinear sampling; callers that shrink by more than 2× should pass a pre-resized image to
    avoid aliasing.
    """
    import cv2

    w, h = (size, size) if isinstance(size, int) else size
    mode = {"reflect": cv2.BORDER_REFLECT101, "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}[border]
    return cv2.warpAffine(image, np.asarray(m, dtype=np.float64), (int(w), int(h)), flags=cv2.INTER_LINEAR, borderMode=mode)


def inner_cut(coverage: float, crop_size: int = CROP_SIZE) -> tuple[int, int]:
    """The rows and columns of a ``crop_size`` crop that a model of ``coverage`` sees: ``crop[lo:hi, lo:hi]``."""
    side = coverage * crop_size
    offset = (crop_size - side) / 2.0
    return int(round(offset)), int(round(offset + side))


def resize_to_model(inner: np.ndarray, size: int) -> np.ndarray:
    """The model input from the kept part of a crop (area filter when shrinking)."""
    import cv2

    interp = cv2.INTER_AREA if inner.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(inner, (size, size), interpolation=interp)


def crop_to_model(crop: np.ndarray, coverage: float, size: int) -> np.ndarray:
    """Cut a model input from a stored aligned crop (same geometry as ``model_matrix``)."""
    lo, hi = inner_cut(coverage, crop.shape[1])
    return resize_to_model(crop[lo:hi, lo:hi], size)
