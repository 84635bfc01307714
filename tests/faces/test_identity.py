"""Identity descriptors, clustering and pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedub.faces.identity import MATCH_DISTANCE, cluster, estimate_pose, face_distance


def test_face_distance_shapes() -> None:
    a = np.zeros(128)
    b = np.full(128, 0.1)
    assert face_distance(a, b) == pytest.approx(np.sqrt(128) * 0.1)
    d = face_distance(np.stack([a, b]), a)
    assert d.shape == (2,) and d[0] == 0.0


def test_cluster_puts_the_biggest_group_first() -> None:
    rng = np.random.default_rng(0)
    c1, c2 = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128) + 0.2  # ~2.3 apart
    small = c1 + rng.normal(0, 0.01, (2, 128))
    big = c2 + rng.normal(0, 0.01, (5, 128))
    labels = cluster(np.vstack([small, big]))
    assert labels.tolist() == [1, 1, 0, 0, 0, 0, 0]
    # weights override counts: two descriptors standing for 100 faces each win
    labels = cluster(np.vstack([small, big]), weights=np.array([100, 100, 1, 1, 1, 1, 1]))
    assert labels[:2].tolist() == [0, 0] and set(labels[2:].tolist()) == {1}
    assert cluster(np.zeros((0, 128))).shape == (0,)
    assert cluster(np.zeros((1, 128))).tolist() == [0]


def _projected68(yaw: float, pitch: float, roll: float, width: int = 640, height: int = 480) -> np.ndarray:
    """68 landmarks of the generic pose model turned by (yaw, pitch, roll) and projected."""
    from facedub.faces.identity import _POSE_IDX, _POSE_MODEL

    model = _POSE_MODEL * np.array([1.0, -1.0, -1.0])  # camera axes: x right, y down, z away
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    pts = model @ (rz @ rx @ ry).T + [0, 0, 400]
    f = max(width, height)
    proj = pts[:, :2] / pts[:, 2:] * f + [width / 2, height / 2]
    lm = np.zeros((68, 2))
    lm[list(_POSE_IDX)] = proj
    lm[36:42] = proj[2]
    lm[42:48] = proj[3]
    return lm


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (25, 0, 0), (-25, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 12), (20, -10, 5)])
def test_pose_recovers_projected_angles(yaw: float, pitch: float, roll: float) -> None:
    got = estimate_pose(_projected68(yaw, pitch, roll), 640, 480)
    assert got[0] == pytest.approx(yaw, abs=3)
    assert got[1] == pytest.approx(pitch, abs=3)
    assert got[2] == pytest.approx(roll, abs=3)


def test_pose_signs_in_image_terms() -> None:
    lm = _projected68(25, 0, 0)
    nose, eyes = lm[30, 0], (lm[36, 0] + lm[45, 0]) / 2
    assert nose > eyes  # yaw > 0: the nose points to the image's right

    def nose_height(lm: np.ndarray) -> float:  # nose tip relative to the middle of eyes and mouth
        return float(lm[30, 1] - (lm[36, 1] + lm[45, 1] + lm[48, 1] + lm[54, 1]) / 4)

    assert nose_height(_projected68(0, 15, 0)) < nose_height(_projected68(0, 0, 0))  # pitch > 0: nose rises


@pytest.mark.shared
def test_descriptor_same_and_different_people(shared_data: Path) -> None:
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.media.reader import load_image, open_media

    enc = IdentityEncoder()

    def first_face(rgb: np.ndarray) -> np.ndarray:
        with FaceDetector() as det:
            faces = det.detect(rgb)
        assert faces
        return enc.descriptor(rgb, faces[0].landmarks68)

    p1 = first_face(load_image(shared_data / "synthetic" / "aiface1" / "portrait.png"))
    v1 = first_face(next(iter(open_media(shared_data / "synthetic" / "aiface1" / "speech_512.mp4"))).rgb)
    p2 = first_face(load_image(shared_data / "synthetic" / "aiface2" / "portrait.png"))
    assert p1.shape == (128,)
    assert face_distance(p1, v1) < MATCH_DISTANCE - 0.1  # same person: still vs a video frame
    # Two different AI-generated people: dlib's own 0.6 would merge them (measured 0.53-0.57),
    # facedub's stricter threshold keeps them apart.
    assert face_distance(p1, p2) > MATCH_DISTANCE
