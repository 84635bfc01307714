"""Who is this? 128-d identity descriptors (dlib ResNet, face-recognition-models), distances,
clustering and pose.

``SAME_PERSON_DISTANCE`` (0.6) is dlib's own threshold (99.4 % on LFW). facedub decides
with the stricter ``MATCH_DISTANCE`` (0.5): on our test media the same person measures
0.06–0.30 (stills vs video frames, low-resolution GRID clips) but two *different* AI-generated
faces (aiface1 vs aiface2) measure only 0.53–0.57, which 0.6 would call one person. Keeping
the wrong person in a faceset is worse than losing a few frames of the right one.

A descriptor costs ~80–150 ms on one CPU core, so callers compute it only where needed.
The 68 landmarks may come from the mediapipe mesh (``facedub.faces.detect.MESH_TO_68``):
descriptors computed from them differ from those of dlib's own landmark predictors by less
than 0.05 on the same faces.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np

SAME_PERSON_DISTANCE = 0.6  # dlib's threshold
MATCH_DISTANCE = 0.5  # what facedub uses to keep one person (see the module docstring)

RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


def model_path(name: str) -> Path:
    """Path of a model file shipped by the ``face_recognition_models`` package (without importing
    it: its ``__init__`` imports the deprecated ``pkg_resources``)."""
    from facedub.errors import BadInput

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput("face_recognition_models: package not installed (pip install face-recognition-models)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise BadInput(f"{path}: model file missing from face_recognition_models")
    return path


class IdentityEncoder:
    """dlib's face recognition ResNet: RGB frame + 68 landmarks → 128-d descriptor."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._net = dlib.face_recognition_model_v1(str(model_path(RECOGNITION_MODEL)))

    def descriptor(self, rgb: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """128-d float64 descriptor of the face whose 68 landmarks (frame px) are given."""
        dlib = self._dlib
        lm = np.asarray(landmarks68, dtype=np.float64)
        if lm.shape != (68, 2):
            raise ValueError(f"expected 68x2 landmarks, got {lm.shape}")
        x0, y0 = np.floor(lm.min(axis=0)).astype(int)
        x1, y1 = np.ceil(lm.max(axis=0)).astype(int)
        shape = dlib.full_object_detection(
            dlib.rectangle(int(x0), int(y0), int(x1), int(y1)),
            [dlib.point(int(round(x)), int(round(y))) for x, y in lm],
        )
        d = self._net.compute_face_descriptor(np.ascontiguousarray(rgb, dtype=np.uint8), shape)
        return np.asarray(d, dtype=np.float64)


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Euclidean distance between descriptors: (128,)×(128,) → float; (N,128)×(128,) → (N,)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = np.linalg.norm(a - b, axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def cluster(descriptors: np.ndarray, threshold: float = MATCH_DISTANCE, weights: np.ndarray | None = None) -> np.ndarray:
    """Group descriptors into identities (average-linkage clustering, cut at ``threshold``).

    Returns one label per descriptor; label 0 is the biggest group (by ``weights`` summed, e.g.
    the number of faces each descriptor stands for; by count when omitted), 1 the next, ...
    """
    x = np.asarray(descriptors, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.zeros(1, dtype=int)
    from scipy.cluster.hierarchy import fcluster, linkage

    raw = fcluster(linkage(x, method="average", metric="euclidean"), t=threshold, criterion="distance")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    groups = sorted(set(raw.tolist()), key=lambda g: (-w[raw == g].sum(), int(np.flatnonzero(raw == g)[0])))
    remap = {g: i for i, g in enumerate(groups)}
    return np.array([remap[g] for g in raw.tolist()], dtype=int)


# Generic 3D face (mm; x right, y up, z towards the camera) at iBUG points: nose tip (30),
# chin (8), outer eye corners (36, 45), mouth corners (48, 54).
_POSE_IDX = (30, 8, 36, 45, 48, 54)
_POSE_MODEL = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0, -63.6, -12.5],
        [-43.3, 32.7, -26.0],
        [43.3, 32.7, -26.0],
        [-28.9, -28.9, -24.1],
        [28.9, -28.9, -24.1],
    ]
)


def estimate_pose(landmarks68: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """Rough head pose (yaw, pitch, roll) in degrees from 68 landmarks in a width×height frame.

    yaw > 0: the face turns towards the image's right; pitch > 0: it looks up; roll > 0: it
    tilts clockwise in the image. A generic face model and a guessed camera make yaw/pitch
    good to maybe ±10°; fine for spreads and filtering, not for measurement.
    """
    import cv2

    lm = np.asarray(landmarks68, dtype=np.float64)
    right_eye, left_eye = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    roll = math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
    img = lm[list(_POSE_IDX)]
    f = float(max(width, height))
    cam = np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1]])
    # Image y points down: flip the model's y so the solution is a proper rotation.
    model = _POSE_MODEL * np.array([1.0, -1.0, -1.0])
    # SQPnP: the global least-squares solution, ~0.2 ms; the iterative (Levenberg-Marquardt)
    # solver took ~0.7 ms and lands within 0.2-0.5° on average of it (3.5° at most, on the 786
    # faces of the shared 512² clip): far inside the ±10° this estimate is good for.
    ok, rvec, _t = cv2.solvePnP(model, img, cam, np.zeros(4), flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return 0.0, 0.0, float(roll)
    rot, _ = cv2.Rodrigues(rvec)
    # Direction the face looks at, in camera coordinates (x right, y down, z away from camera).
    fwd = rot @ np.array([0.0, 0.0, -1.0])
    yaw = math.degrees(math.atan2(fwd[0], -fwd[2]))
    pitch = math.degrees(math.atan2(-fwd[1], math.hypot(fwd[0], fwd[2])))
    return float(yaw), float(pitch), float(roll)


def model_dir() -> str:
    return os.path.dirname(model_path(RECOGNITION_MODEL))
