"""mediapipe detection + the mesh → iBUG-68 mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedub.faces.align import CROP_SIZE, TEMPLATE5, align_matrix, transform_points
from facedub.faces.detect import MESH_TO_68, FaceDetector


def test_mapping_is_68_distinct_mesh_vertices() -> None:
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68)) == 68
    assert all(0 <= i < 468 for i in MESH_TO_68)


def test_no_face_in_a_gradient() -> None:
    yy, xx = np.mgrid[0:240, 0:320]
    img = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    with FaceDetector() as det:
        assert det.detect(img) == []


@pytest.mark.shared
def test_portrait_gives_one_well_formed_face(shared_data: Path) -> None:
    from facedub.media.reader import load_image

    img = load_image(shared_data / "synthetic" / "aiface1" / "portrait.png")
    with FaceDetector() as det:
        faces = det.detect(img)
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.8 and f.landmarks68.shape == (68, 2) and f.mesh is not None and f.mesh.shape == (468, 2)
    x0, y0, x1, y1 = f.bbox
    assert x1 - x0 > 200  # the face fills much of the 899 px still
    inside = (f.landmarks68[:, 0] >= x0 - 1) & (f.landmarks68[:, 0] <= x1 + 1) & (f.landmarks68[:, 1] >= y0 - 1) & (f.landmarks68[:, 1] <= y1 + 1)
    assert inside.all()
    lm = f.landmarks68
    # iBUG layout: image-left eye before image-right eye, brows above eyes, mouth below nose, chin lowest
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()
    assert lm[17:27, 1].mean() < lm[36:48, 1].mean() < lm[30, 1] < lm[48:68, 1].mean() < lm[8, 1]
    crop_pts = transform_points(f.points5, align_matrix(f.points5))
    assert np.linalg.norm(crop_pts - TEMPLATE5 * CROP_SIZE, axis=1).max() < 12


@pytest.mark.shared
def test_video_mode_keeps_one_track(shared_data: Path) -> None:
    from facedub.media.reader import open_media

    r = open_media(shared_data / "synthetic" / "aiface1" / "speech_256.mp4")
    tracks, scores = [], []
    with FaceDetector(video_mode=True) as det:
        for fr in r.frames(limit=40):
            faces = det.detect(fr.rgb)
            assert len(faces) == 1
            tracks.append(faces[0].track)
            scores.append(faces[0].score)
    assert len(set(tracks)) == 1 and tracks[0] >= 0
    assert min(scores) > 0.5


@pytest.mark.shared
def test_small_face_in_a_wide_frame(shared_data: Path) -> None:
    """A face ~70 px across in a 1280x720 frame: found by the full-range detector and meshed alone."""
    import cv2

    from facedub.media.reader import load_image

    face = cv2.resize(load_image(shared_data / "synthetic" / "aiface1" / "portrait.png"), (200, 200), interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[400:600, 900:1100] = face
    with FaceDetector() as det:
        faces = det.detect(frame)
    assert len(faces) == 1
    f = faces[0]
    assert 900 <= f.bbox[0] and f.bbox[2] <= 1100 and 400 <= f.bbox[1] and f.bbox[3] <= 600
    assert f.landmarks68[36:42, 0].mean() < f.landmarks68[42:48, 0].mean()


@pytest.mark.shared
def test_video_mode_follows_two_people_with_a_mesh_that_grows(shared_data: Path) -> None:
    """Video mode tracks one face with the mesh at first; a second person (from the first frame
    or entering later) is found by the detector, meshed alone, and then tracked every frame."""
    from facedub.media.reader import open_media

    a = open_media(shared_data / "synthetic" / "aiface1" / "speech_256.mp4")
    b = open_media(shared_data / "synthetic" / "aiface2" / "intro_256.mp4")
    with FaceDetector(video_mode=True) as det:
        assert det._mesh_faces == 1
        seen = []
        for i, (fa, fb) in enumerate(zip(a.frames(limit=24), b.frames(limit=24))):
            right = fb.rgb if i >= 8 else np.full_like(fb.rgb, 90)  # the second person enters at frame 8
            faces = det.detect(np.ascontiguousarray(np.concatenate([fa.rgb, right], axis=1)))
            seen.append(sorted((f.track, f.bbox[0] >= 256) for f in faces))
        assert all(len(s) == 1 for s in seen[:8])
        # Once the detector has run (at most detect_every frames later), both people every frame, same tracks.
        assert all(len(s) == 2 for s in seen[13:]) and len({tuple(s) for s in seen[13:]}) == 1
        assert det._mesh_faces == 2
        det.reset()
        assert det._mesh_faces == 1
