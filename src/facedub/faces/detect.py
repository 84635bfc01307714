"""Face detection and 68 iBUG-layout landmarks with mediapipe 0.10.14 (bundled models).

``FaceDetector.detect(rgb)`` returns :class:`DetectedFace` records: a box, a detector score,
68 landmarks in the iBUG layout (what :func:`facedub.faces.align.points5_from_68` and the
rest of facedub expect), the five alignment points and the 468-point mesh.

How the 68 points are made: mediapipe's face mesh gives 468 surface points; we take a fixed
subset (:data:`MESH_TO_68`). The subset was chosen by running dlib's 68-point predictor and the
mesh on the same frames (aiface1 and five GRID clips) and taking, for every iBUG point, the
mesh vertex closest on average in aligned-crop space. On held-out clips (aiface2, six other
GRID clips) the mapped eye / nose / mouth points lie within 1.7–2.7 px of dlib's (256 px
crops; jaw line 4–6 px, which alignment does not use), and the alignment points jitter about
half as much from frame to frame as dlib's on the low-resolution GRID clips (0.25–0.38 vs
0.51–0.69 crop px) and about as much at 512² (0.51 vs 0.46), at no extra cost: the mesh runs
anyway and tracks across frames in video mode. dlib's predictor would add ~2.8 ms per face.

Video mode: the mesh tracks faces from frame to frame (much faster than re-detecting), and
the BlazeFace detector runs every ``detect_every`` frames (and whenever the number of tracked
faces changes) to score the tracked faces; between detector runs a face keeps the score of
its track. Faces the mesh does not find but the detector does (small faces far from the
camera) are cut out, enlarged and meshed one by one, and in video mode followed that way from
frame to frame (meshed again where they were) while the whole-frame mesh does not see them.

Small, huge and cut-off faces. The detectors see the whole frame scaled to their input (128 or
192 px), so in 1920×1080 the full-range one finds faces down to about 90 px across (mesh box;
score ≈0.65 there) and misses smaller ones. When neither finds anything, the full-range
detector runs on square tiles of the frame's short side (three in 1080p, halved above 960 px)
and finds faces down to 30–40 px: measured on the shared talking heads pasted into a 1080p
frame, 40, 50, 60 and 70 px faces were found in stills and tracked in every frame of a moving
clip (eyes, nose and mouth within 1.7 % of the face width of the full-size landmarks at 40 px,
0.7 % at 90 px); 30 px was found in stills at lower confidence. Below ≈30 px nothing is found.
A face bigger than the frame or running off its edge (half of it outside) is found by the
short-range detector on the frame inside a grey border; its landmarks then lie partly
outside the frame and its box is clipped. In video mode the tiles and the border run only
every ``detect_every`` frames while nothing is tracked, so empty footage stays cheap.
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from facedub.faces.align import points5_from_68

# iBUG 68 index → mediapipe face-mesh vertex (see the module docstring for how it was chosen).
MESH_TO_68 = (
    127, 234, 147, 215, 138, 136, 149, 176, 152, 377, 378, 365, 367, 435, 376, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 55,  # right brow 17-21 (image left)
    285, 296, 334, 293, 300,  # left brow 22-26
    168, 197, 195, 4,  # nose bridge 27-30
    240, 99, 2, 326, 305,  # nostrils 31-35
    7, 160, 158, 155, 153, 144,  # right eye 36-41 (image left)
    362, 385, 386, 249, 373, 380,  # left eye 42-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 91,  # outer lip 48-59
    78, 38, 12, 268, 325, 317, 14, 87,  # inner lip 60-67
)
assert len(MESH_TO_68) == 68

# A small face is enlarged to about this size (px) before meshing it alone.
_ROI_SIZE = 256


def _mediapipe():  # noqa: ANN202
    """Import mediapipe with its C++ info/warning logs and protobuf deprecation noise off."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mediapipe as mp
    return mp


@contextmanager
def _quiet_native_logs() -> Iterator[None]:
    """Silence what mediapipe's C++ side writes to stderr while its graphs start (absl/TFLite
    banners that would bury facedub's own one-line messages). Python warnings are muted too."""
    try:
        sys.stderr.flush()
        fd = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded): nothing to silence
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


@dataclass(frozen=True)
class DetectedFace:
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 of the mesh, frame pixels
    score: float  # detector confidence in [0, 1]
    landmarks68: np.ndarray  # (68, 2) float64, frame pixels, iBUG layout
    points5: np.ndarray  # (5, 2) eye centres, nose tip, mouth corners
    mesh: np.ndarray | None = None  # (468, 2) mediapipe mesh, frame pixels
    track: int = -1  # video mode: the same number for the same face across frames

    @property
    def size(self) -> float:
        """Shorter side of the box, in pixels."""
        x0, y0, x1, y1 = self.bbox
        return float(min(x1 - x0, y1 - y0))


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _tile_starts(length: int, side: int) -> list[int]:
    """Starts of evenly spaced tiles of ``side`` covering ``length``, overlapping by at least a
    quarter of a tile (the first at 0, the last flush with the end)."""
    if length <= side:
        return [0]
    n = -(-(length - side) // max(1, side * 3 // 4)) + 1
    return [round(k * (length - side) / (n - 1)) for k in range(n)]


def _merge_boxes(boxes: list[tuple[tuple[float, float, float, float], float]], iou: float = 0.3) -> list[tuple[tuple[float, float, float, float], float]]:
    """Boxes found twice (overlapping tiles) kept once, the higher score first."""
    kept: list[tuple[tuple[float, float, float, float], float]] = []
    for b, s in sorted(boxes, key=lambda bs: -bs[1]):
        if all(_iou(b, k) <= iou for k, _ in kept):
            kept.append((b, s))
    return kept


def _shrink(rgb: np.ndarray, longest: int) -> np.ndarray:
    """``rgb`` scaled down so its longer side is at most ``longest`` (unchanged if already)."""
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= longest:
        return np.ascontiguousarray(rgb)
    k = longest / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)


# One NormalizedLandmark as protobuf writes it when it holds x, y and z and nothing else:
# field tag, length 15, then tag + float32 for each of x, y, z.
_LANDMARK_WIRE = np.dtype([("head", "u1", (3,)), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"), ("tz", "u1"), ("z", "<f4")])
_LANDMARK_HEAD = np.array([0x0A, 0x0F, 0x0D], np.uint8)


def _landmark_array(landmarks, w: int, h: int) -> np.ndarray:  # noqa: ANN001 - NormalizedLandmarkList
    """(N, 2) frame pixels from a mediapipe NormalizedLandmarkList.

    Reads the message's wire bytes with numpy (≈0.04 ms for the 468-point mesh) instead of
    visiting every point from Python (≈0.55 ms, ~10 % of a frame's detection); the values are
    the same float32s either way. Falls back to the Python loop when the bytes are laid out
    otherwise (e.g. a landmark carrying visibility).
    """
    n = len(landmarks.landmark)
    raw = landmarks.SerializeToString()
    if n and len(raw) == n * _LANDMARK_WIRE.itemsize:
        rec = np.frombuffer(raw, dtype=_LANDMARK_WIRE)
        if (rec["head"] == _LANDMARK_HEAD).all() and (rec["ty"] == 0x15).all() and (rec["tz"] == 0x1D).all():
            out = np.empty((n, 2), np.float64)
            out[:, 0] = rec["x"]
            out[:, 1] = rec["y"]
            out[:, 0] *= w
            out[:, 1] *= h
            return out
    return np.array([(p.x * w, p.y * h) for p in landmarks.landmark], dtype=np.float64).reshape(-1, 2)


def _box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


class FaceDetector:
    """mediapipe face detection + face mesh. Use as a context manager or call ``close()``.

    ``video_mode`` tracks faces between consecutive calls (feed frames in order; make a new
    detector, or call ``reset()``, for a new video). ``max_faces`` bounds the faces per frame;
    ``min_score`` is the detector confidence below which a face is not reported.
    """

    def __init__(self, video_mode: bool = False, max_faces: int = 4, min_score: float = 0.5, detect_every: int = 5) -> None:
        # mediapipe 0.10.14 calls a deprecated protobuf API on every graph run; not ours to fix.
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning)
        self.video_mode = video_mode
        self.max_faces = max_faces
        self.min_score = min_score
        self.detect_every = max(1, detect_every)
        self._mesh = None
        # Faces the tracking mesh looks for. mediapipe reruns its own face detector on every
        # frame while it tracks fewer faces than that (≈1.7 ms of CPU a 512² frame), so in
        # video mode it starts at 1 and grows when our detector (every ``detect_every``
        # frames) sees more people; faces beyond it are meshed alone in the meantime.
        self._mesh_faces = self._first_mesh_faces()
        self._roi_mesh = None
        self._det_short = None
        self._det_full = None
        self._calls = 0
        self._tracks: list[tuple[int, tuple[float, float, float, float], float]] = []  # (id, box, score)
        self._next_track = 0
        self._last_count = -1

    def _first_mesh_faces(self) -> int:
        return 1 if self.video_mode else self.max_faces

    # -- mediapipe objects, made on first use --------------------------------------------
    def _solutions(self):  # noqa: ANN202
        return _mediapipe().solutions

    def _get_mesh(self):  # noqa: ANN202
        if self._mesh is None:
            with _quiet_native_logs():
                self._mesh = self._solutions().face_mesh.FaceMesh(
                    static_image_mode=not self.video_mode,
                    max_num_faces=self._mesh_faces,
                    refine_landmarks=False,
                    min_detection_confidence=self.min_score,
                    min_tracking_confidence=0.5,
                )
                self._mesh.process(np.zeros((64, 64, 3), np.uint8))  # first run logs from C++
        return self._mesh

    def _get_roi_mesh(self):  # noqa: ANN202
        if self._roi_mesh is None:
            with _quiet_native_logs():
                self._roi_mesh = self._solutions().face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=0.3
                )
                self._roi_mesh.process(np.zeros((64, 64, 3), np.uint8))
        return self._roi_mesh

    def _get_detector(self, full_range: bool):  # noqa: ANN202
        fd = self._solutions().face_detection
        attr = "_det_full" if full_range else "_det_short"
        if getattr(self, attr) is None:
            with _quiet_native_logs():
                det = fd.FaceDetection(model_selection=1 if full_range else 0, min_detection_confidence=self.min_score)
                det.process(np.zeros((64, 64, 3), np.uint8))
            setattr(self, attr, det)
        return getattr(self, attr)

    # -- public -------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in one RGB uint8 frame, largest first."""
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        self._calls += 1
        meshes = self._run_mesh(self._get_mesh(), rgb)
        # Video mode: faces of the last frame that the whole-frame mesh lost (small or partly
        # hidden faces, which its own detector does not see) are meshed again where they were.
        tracked: list[tuple[np.ndarray, float]] = []
        if self.video_mode:
            for _tid, box, score in self._tracks:
                if any(_iou(_box_of(m), box) > 0.3 for m in meshes):
                    continue
                m = self._mesh_roi(rgb, box)
                if m is not None and not any(_iou(_box_of(m), _box_of(t)) > 0.3 for t, _ in tracked):
                    tracked.append((m, score))
        found = len(meshes) + len(tracked)
        detector_frame = (self._calls - 1) % self.detect_every == 0
        run_detector = (
            not self.video_mode
            or found == 0
            or found != self._last_count
            or detector_frame
            or any(self._match_track(_box_of(m)) is None for m in meshes)
        )
        self._last_count = found
        boxes: list[tuple[tuple[float, float, float, float], float]] = []
        if run_detector:
            boxes = self._run_detector(rgb, full_range=False)
            if not boxes:  # the short-range model misses small or distant faces
                boxes = self._run_detector(rgb, full_range=True)
            if not boxes and found == 0 and (not self.video_mode or detector_frame):
                # Still nothing: faces too small for the whole frame scaled to the detector's
                # input (tiles), or too big for it (the frame padded). In video mode only every
                # ``detect_every`` frames while nothing is tracked: a face found is tracked after.
                boxes = self._run_detector_tiled(rgb) or self._run_detector_padded(rgb)
            if self.video_mode and len(meshes) < len(boxes) and self._mesh_faces < min(len(boxes), self.max_faces):
                self._mesh_faces = min(len(boxes), self.max_faces)
                self._close_mesh()  # track them all from the next frame (this one: meshed alone below)
        faces: list[tuple[np.ndarray, float]] = []
        used: set[int] = set()
        for m in meshes:
            box = _box_of(m[list(MESH_TO_68)])
            if run_detector:
                best, best_iou = -1, 0.1
                for j, (b, _s) in enumerate(boxes):
                    v = _iou(box, b)
                    if j not in used and v > best_iou:
                        best, best_iou = j, v
                if best < 0:
                    continue  # the mesh holds on to something the detector does not call a face
                used.add(best)
                score = boxes[best][1]
            else:
                tr = self._match_track(_box_of(m))
                score = tr[2] if tr is not None else 0.0
            faces.append((m, score))
        # Faces followed by their own meshing keep their track's score (the mesh found a face
        # where one was); a detector box on them is theirs.
        for m, score in tracked:
            box = _box_of(m[list(MESH_TO_68)])
            for j, (b, s) in enumerate(boxes):
                if j not in used and _iou(box, b) > 0.1:
                    used.add(j)
                    score = max(score, s)
            faces.append((m, score))
        # Detector boxes the mesh missed (small or partly hidden faces): mesh them alone.
        for j, (b, s) in enumerate(boxes):
            if j in used or len(faces) >= self.max_faces:
                continue
            m = self._mesh_roi(rgb, b)
            if m is not None:
                faces.append((m, s))
        out = []
        for m, s in faces:
            if s < self.min_score:
                continue
            lm68 = m[list(MESH_TO_68)].copy()
            box = _box_of(m)
            box = (max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3]))
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue  # a mesh wholly outside the frame
            out.append(DetectedFace(box, float(s), lm68, points5_from_68(lm68), m))
        out.sort(key=lambda f: -f.size)
        return self._assign_tracks(out[: self.max_faces])

    def reset(self) -> None:
        """Forget tracked faces (call between videos in video mode)."""
        self._close_mesh()
        self._mesh_faces = self._first_mesh_faces()
        self._tracks = []
        self._calls = 0
        self._last_count = -1

    def close(self) -> None:
        self._close_mesh()
        for attr in ("_roi_mesh", "_det_short", "_det_full"):
            obj = getattr(self, attr)
            if obj is not None:
                obj.close()
                setattr(self, attr, None)

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------
    def _close_mesh(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    @staticmethod
    def _run_mesh(mesh, rgb: np.ndarray) -> list[np.ndarray]:  # noqa: ANN001
        h, w = rgb.shape[:2]
        res = mesh.process(rgb)
        return [_landmark_array(fl, w, h) for fl in res.multi_face_landmarks or ()]

    def _run_detector(self, rgb: np.ndarray, full_range: bool) -> list[tuple[tuple[float, float, float, float], float]]:
        h, w = rgb.shape[:2]
        res = self._get_detector(full_range).process(rgb)
        out = []
        for d in res.detections or ():
            bb = d.location_data.relative_bounding_box
            x0, y0 = bb.xmin * w, bb.ymin * h
            out.append(((x0, y0, x0 + bb.width * w, y0 + bb.height * h), float(d.score[0])))
        return out

    def _run_detector_tiled(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """The full-range detector on square tiles (side: the frame's short side, halved above
        960 px), overlapping by a quarter, for faces too small in the whole frame: in 1920×1080
        three tiles, and faces down to ≈30 px across are found (the whole frame: ≈90 px)."""
        h, w = rgb.shape[:2]
        side = min(h, w)
        if side > 960:
            side //= 2
        if side < 64 or (side == h and side == w):
            return []
        found: list[tuple[tuple[float, float, float, float], float]] = []
        for y in _tile_starts(h, side):
            for x in _tile_starts(w, side):
                for (x0, y0, x1, y1), s in self._run_detector(np.ascontiguousarray(rgb[y : y + side, x : x + side]), full_range=True):
                    found.append(((x0 + x, y0 + y, x1 + x, y1 + y), s))
        return _merge_boxes(found)

    def _run_detector_padded(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """The short-range detector on the frame inside a grey border of half its size on every
        side: a face filling the frame, or running off its edges, is whole-ish and smaller there."""
        h, w = rgb.shape[:2]
        py, px = h // 2, w // 2
        padded = np.full((h + 2 * py, w + 2 * px, 3), 114, np.uint8)
        padded[py : py + h, px : px + w] = rgb
        small = _shrink(padded, 640)
        k = padded.shape[1] / small.shape[1]
        return [((x0 * k - px, y0 * k - py, x1 * k - px, y1 * k - py), s) for (x0, y0, x1, y1), s in self._run_detector(small, full_range=False)]

    def _mesh_roi(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        """Mesh one face cut out around ``box`` (enlarged so the mesh sees it at a usable size)."""
        import cv2

        h, w = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * 2.0
        if side < 8:
            return None
        scale = _ROI_SIZE / side
        m = np.array([[scale, 0.0, _ROI_SIZE / 2 - scale * cx], [0.0, scale, _ROI_SIZE / 2 - scale * cy]])
        roi = cv2.warpAffine(rgb, m, (_ROI_SIZE, _ROI_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        found = self._run_mesh(self._get_roi_mesh(), roi)
        if not found:
            return None
        pts = found[0]
        return (pts - m[:, 2]) / scale

    def _match_track(self, box: tuple[float, float, float, float]) -> tuple[int, tuple[float, float, float, float], float] | None:
        best, best_iou = None, 0.3
        for tr in self._tracks:
            v = _iou(box, tr[1])
            if v > best_iou:
                best, best_iou = tr, v
        return best

    def _assign_tracks(self, faces: list[DetectedFace]) -> list[DetectedFace]:
        if not self.video_mode:
            return faces
        new_tracks = []
        out = []
        taken: set[int] = set()
        for f in faces:
            tr = self._match_track(f.bbox)
            if tr is None or tr[0] in taken:
                tid = self._next_track
                self._next_track += 1
            else:
                tid = tr[0]
            taken.add(tid)
            new_tracks.append((tid, f.bbox, f.score))
            out.append(DetectedFace(f.bbox, f.score, f.landmarks68, f.points5, f.mesh, tid))
        self._tracks = new_tracks
        return out
