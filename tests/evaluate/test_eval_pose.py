"""Head pose from landmarks: recovers known rotations of the template."""

from __future__ import annotations

import numpy as np
import pytest

from facedub.evaluate import pose as P
from facedub.evaluate.metrics import rotation_angle_deg


def landmarks_for(yaw: float, pitch: float, roll: float, w: int = 512, h: int = 512, dist: float = 600.0) -> np.ndarray:
    r = P.rotation_from_euler(yaw, pitch, roll)
    pts = P.project_template(r, np.array([10.0, -5.0, dist]), w, h)
    lm = np.zeros((68, 2))
    lm[list(P.POSE_POINTS)] = pts
    return lm


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (-30, 10, 5), (0, -15, 0), (10, 20, -20), (40, -10, 12)])
def test_recovers_known_pose(angles):
    yaw, pitch, roll = angles
    hp = P.head_pose(landmarks_for(yaw, pitch, roll), 512, 512)
    assert hp is not None
    assert hp.yaw == pytest.approx(yaw, abs=0.5)
    assert hp.pitch == pytest.approx(pitch, abs=0.5)
    assert hp.roll == pytest.approx(roll, abs=0.5)


def test_euler_round_trip_and_geodesic_angle():
    r = P.rotation_from_euler(20, -10, 5)
    assert P.euler_from_rotation(r) == pytest.approx((20, -10, 5))
    assert rotation_angle_deg(P.rotation_from_euler(0, 0, 0), P.rotation_from_euler(30, 0, 0)) == pytest.approx(30.0)


def test_sign_conventions():
    # positive yaw: nose tip moves towards image left relative to the eye midpoint
    lm = landmarks_for(30, 0, 0)
    assert lm[30, 0] < (lm[36, 0] + lm[45, 0]) / 2
    # positive roll: clockwise in the image → the eye on the image's right is lower
    lm = landmarks_for(0, 0, 20)
    assert lm[45, 1] > lm[36, 1]


def test_degenerate_landmarks():
    assert P.head_pose(np.zeros((68, 2)), 512, 512) is None
    with pytest.raises(ValueError):
        P.head_pose(np.zeros((5, 2)), 512, 512)
