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


def test_tiles_cover_the_frame_with_overlap() -> None:
    from facedub.faces.detect import _merge_boxes, _tile_starts

    assert _tile_starts(1920, 1080) == [0, 420, 840]
    assert _tile_starts(1000, 400) == [0, 300, 600]
    assert _tile_starts(300, 400) == [0]
    for length, side in ((1920, 1080), (1000, 400), (3840, 1080)):
        starts = _tile_starts(length, side)
        assert starts[0] == 0 and starts[-1] + side == length
        assert all(b - a <= side * 3 // 4 for a, b in zip(starts, starts[1:]))  # every step overlaps
    merged = _merge_boxes([((0, 0, 10, 10), 0.6), ((1, 1, 11, 11), 0.9), ((50, 50, 60, 60), 0.7)])
    assert merged == [((1, 1, 11, 11), 0.9), ((50, 50, 60, 60), 0.7)]


def _face_in_1080p(shared_data: Path, width: int, centre: tuple[int, int] = (1300, 540), source: str = "aiface1") -> tuple[np.ndarray, float]:
    """The first frame of a 512² talking head scaled so its face (mesh box) is ``width`` px wide,
    pasted into a grey 1920×1080 frame around ``centre`` (cut off where it leaves the frame)."""
    import cv2

    from facedub.media.reader import open_media

    clip = {"aiface1": "aiface1/speech_512.mp4", "aiface2": "aiface2/intro_512.mp4"}[source]
    src = next(iter(open_media(shared_data / "synthetic" / clip).frames(limit=1))).rgb
    s = width / 253.0  # the mesh box of the face in that frame is 253 px wide
    img = cv2.resize(src, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    frame = np.full((1080, 1920, 3), 100, np.uint8)
    h, w = img.shape[:2]
    x0, y0 = centre[0] - w // 2, centre[1] - h // 2
    sx, sy = max(0, -x0), max(0, -y0)
    dx, dy = max(0, x0), max(0, y0)
    cw, ch = min(w - sx, 1920 - dx), min(h - sy, 1080 - dy)
    frame[dy : dy + ch, dx : dx + cw] = img[sy : sy + ch, sx : sx + cw]
    return frame, s


@pytest.mark.shared
@pytest.mark.parametrize("width", [40, 60, 90])
def test_small_faces_in_1080p_are_found_by_tiles(shared_data: Path, width: int) -> None:
    """The whole 1080p frame scaled to the detectors' input leaves a face under ≈90 px too small
    to find; the full-range detector on three square tiles finds faces down to ≈30 px."""
    frame, _ = _face_in_1080p(shared_data, width)
    with FaceDetector() as det:
        faces = det.detect(frame)
    assert len(faces) == 1
    f = faces[0]
    assert 0.8 * width <= f.size <= 1.25 * width
    assert 1300 - width < (f.bbox[0] + f.bbox[2]) / 2 < 1300 + width
    assert f.landmarks68[36:42, 0].mean() < f.landmarks68[42:48, 0].mean()


@pytest.mark.shared
def test_video_mode_follows_a_small_moving_face(shared_data: Path) -> None:
    import cv2

    from facedub.faces.align import points5_from_68
    from facedub.media.reader import open_media

    frames = [f.rgb for f in open_media(shared_data / "synthetic" / "aiface1" / "speech_512.mp4").frames(limit=20)]
    with FaceDetector() as still:
        ref = [still.detect(f)[0].landmarks68 for f in frames]
    s = 60 / 253.0
    errors = []
    with FaceDetector(video_mode=True) as det:
        for i, f in enumerate(frames):
            img = cv2.resize(f, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            frame = np.full((1080, 1920, 3), 100, np.uint8)
            x0, y0 = 1200 + 3 * i, 500
            frame[y0 : y0 + img.shape[0], x0 : x0 + img.shape[1]] = img
            faces = det.detect(frame)
            assert len(faces) == 1, i
            assert faces[0].track == 0  # one track throughout
            truth = ref[i] * s + (x0, y0)
            errors.append(np.linalg.norm(points5_from_68(faces[0].landmarks68) - points5_from_68(truth), axis=1).mean() / 60)
    assert np.median(errors) < 0.03  # eyes, nose and mouth within 3 % of the face width


@pytest.mark.shared
@pytest.mark.parametrize("width, centre", [(1000, (960, 540)), (1400, (960, 540)), (500, (60, 540)), (500, (960, 800))])
def test_faces_filling_or_leaving_the_frame(shared_data: Path, width: int, centre: tuple[int, int]) -> None:
    """A face as tall as the frame, bigger than it, or half outside it: found (the bigger ones
    by the detector on the frame inside a border), landmarks partly outside the frame, box clipped."""
    frame, _ = _face_in_1080p(shared_data, width, centre)
    with FaceDetector() as det:
        faces = det.detect(frame)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].bbox
    assert 0 <= x0 < x1 <= 1920 and 0 <= y0 < y1 <= 1080
    assert abs(faces[0].landmarks68[:, 0].mean() - centre[0]) < 0.3 * width
    if centre[1] == 800:  # the face centre lies below the frame: its chin does too
        assert faces[0].landmarks68[8, 1] > 1080


def test_landmarks_read_from_wire_bytes_equal_the_python_loop() -> None:
    from facedub.faces.detect import _landmark_array, _mediapipe

    _mediapipe()
    from mediapipe.framework.formats import landmark_pb2

    rng = np.random.default_rng(0)
    msg = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in rng.uniform(-0.2, 1.2, (468, 3)):
        msg.landmark.add(x=x, y=y, z=z)
    msg.landmark[7].x = 0.0  # a zero is still written (proto2 presence)
    loop = lambda m: np.array([(p.x * 640, p.y * 360) for p in m.landmark])  # noqa: E731
    fast = _landmark_array(msg, 640, 360)
    assert fast.shape == (468, 2) and fast.dtype == np.float64
    assert np.array_equal(fast, loop(msg))
    msg.landmark[3].visibility = 0.5  # another layout: the slow path, same values
    assert np.array_equal(_landmark_array(msg, 640, 360), loop(msg))
    assert _landmark_array(landmark_pb2.NormalizedLandmarkList(), 640, 360).shape == (0, 2)
