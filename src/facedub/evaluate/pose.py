"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks, by ``cv2.solvePnP``.

A generic 3-D face template (below, millimetres, written for this module from average adult
proportions) is fitted to a subset of the 2-D landmarks with a pinhole camera whose focal
length is the larger image side and whose centre is the image centre. The absolute angles
carry the template's and the camera guess's bias; eval only compares the pose of the output
face with the pose of the target face in the same frame, where those biases largely cancel.

Frames: the template's axes are x → image right, y → image down, z → into the head (the
nose tip has negative z), so a frontal face has the identity rotation. Angles decompose the
head → camera rotation as ``R = Ry(yaw) · Rx(pitch) · Rz(roll)``: positive yaw turns the
nose towards image left, positive pitch tips the nose down, positive roll turns the face
clockwise in the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Generic face, millimetres; origin at the top of the nose bridge (point 27), eyes at y = 0.
# Only points that move little with expression are used: eye corners, nose and mouth corners.
TEMPLATE3D: dict[int, tuple[float, float, float]] = {
    36: (-44.0, 0.0, 22.0),  # outer corner of the eye on the image's left
    39: (-14.0, 0.0, 10.0),  # inner corner, same eye
    42: (14.0, 0.0, 10.0),  # inner corner, other eye
    45: (44.0, 0.0, 22.0),  # outer corner, other eye
    27: (0.0, -4.0, 0.0),  # top of the nose bridge
    30: (0.0, 42.0, -20.0),  # nose tip
    31: (-14.0, 50.0, -2.0),  # nostril wing, left
    33: (0.0, 54.0, -6.0),  # base of the nose (subnasale)
    35: (14.0, 50.0, -2.0),  # nostril wing, right
    48: (-25.0, 76.0, 10.0),  # mouth corner, left
    54: (25.0, 76.0, 10.0),  # mouth corner, right
}
POSE_POINTS: tuple[int, ...] = tuple(TEMPLATE3D)
_MODEL = np.array([TEMPLATE3D[i] for i in POSE_POINTS], dtype=np.float64)
_MODEL_IOD_MM = 88.0  # distance between the template's outer eye corners


@dataclass(frozen=True)
class HeadPose:
    yaw: float  # degrees
    pitch: float  # degrees
    roll: float  # degrees
    rotation: tuple[tuple[float, ...], ...]  # 3×3 head → camera rotation

    def rotation_matrix(self) -> np.ndarray:
        return np.asarray(self.rotation, dtype=np.float64)


def camera_matrix(width: int, height: int) -> np.ndarray:
    f = float(max(width, height))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def euler_from_rotation(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for ``R = Ry(yaw) · Rx(pitch) · Rz(roll)``."""
    r = np.asarray(r, dtype=np.float64)
    pitch = math.asin(float(np.clip(-r[1, 2], -1.0, 1.0)))
    yaw = math.atan2(r[0, 2], r[2, 2])
    roll = math.atan2(r[1, 0], r[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of :func:`euler_from_rotation` (degrees in)."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def project_template(rotation: np.ndarray, translation: np.ndarray, width: int, height: int) -> np.ndarray:
    """2-D image points of the template under a pose (for tests and debugging), N×2."""
    k = camera_matrix(width, height)
    cam = _MODEL @ np.asarray(rotation, dtype=np.float64).T + np.asarray(translation, dtype=np.float64)
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3]


def head_pose(lm68: np.ndarray, width: int, height: int) -> HeadPose | None:
    """Head pose of a face from its 68 landmarks in a ``width``×``height`` frame; None if the fit fails."""
    import cv2

    lm = np.asarray(lm68, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {lm.shape}")
    img = np.ascontiguousarray(lm[list(POSE_POINTS)])
    k = camera_matrix(width, height)
    iod_px = float(np.linalg.norm(lm[45] - lm[36]))
    if iod_px < 1e-3:
        return None
    # Start from a frontal face at the distance that gives the observed eye spacing: the
    # iterative solver then converges to the right one of PnP's mirror solutions.
    z0 = k[0, 0] * _MODEL_IOD_MM / iod_px
    centre = lm[[36, 45]].mean(axis=0)
    t0 = np.array([[(centre[0] - k[0, 2]) * z0 / k[0, 0]], [(centre[1] - k[1, 2]) * z0 / k[1, 1]], [z0]])
    r0 = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(_MODEL, img, k, None, rvec=r0, tvec=t0, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or not np.all(np.isfinite(rvec)) or float(tvec[2, 0]) <= 0:
        return None
    r, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = euler_from_rotation(r)
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, rotation=tuple(tuple(float(v) for v in row) for row in r))
