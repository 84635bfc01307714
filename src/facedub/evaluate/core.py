"""``evaluate``: how good is a swap? Compares an output video with the target video it was
made from, frame by frame, and with the source person's faceset.

What is measured on which frames:

* every compared frame: faces and 68 landmarks in both videos → expression error, head pose
  error, landmark and pixel jitter (output and target), background PSNR;
* every ``config.every``-th frame: 128-d identity descriptors of the output face and of the
  target face (≈150 ms each) → distances to the source and to the target person;
* every frame with a target face: detail of the inner face in both videos (sharpness ratio)
  and the colour step along the paste border (seam), both placed by the target's landmarks,
  so they are measured even where the output face is too blurred to be detected.

The summary ends in a verdict (:mod:`facedub.evaluate.verdict`): "usable" only when identity,
sharpness, expression, seam and jitter are all within bounds, else the reasons and what to do.

The output face is the detected face that overlaps the target's face most (the swap happens
in place); the target face is the largest face in the target frame.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facedub.errors import BadInput, Cancelled
from facedub.evaluate import metrics as M
from facedub.evaluate.pose import head_pose
from facedub.evaluate.verdict import QualityBounds, judge_summary
from facedub.progress import NullReporter, Reporter


@dataclass(frozen=True)
class EvalConfig:
    every: int = 5  # identity descriptors on every Nth frame (landmark metrics use every frame)
    max_frames: int | None = None  # compare only the first N frames (None: all)
    max_frame_mismatch: int = 2  # frame counts may differ by this much; the common prefix is compared
    max_source_faces: int = 200  # at most this many faceset faces (evenly spaced) form the source identity
    background_margin: float = 0.5  # face mask = hull of the target's landmarks grown by this × inter-ocular distance
    min_face_overlap: float = 0.3  # an output face must overlap the target face by this IoU to count as "the" face
    strip_frames: int = 6  # before/after frame pairs shown in the HTML report
    # Where the face was pasted, for the seam measure (convert's defaults; the eval cannot know
    # the settings a video was made with): the outline is the landmark hull with the forehead
    # share of ConvertConfig.forehead, and convert's mask is fully opaque from
    # erode (1.5 %) + feather (5 %) of the face size inside it.
    paste_forehead: float = 0.1
    seam_inset: float = 0.065  # inner band starts this share of the face size inside the outline
    seam_band: float = 0.04  # width of the inner and outer bands, share of the face size
    bounds: QualityBounds = field(default_factory=QualityBounds)  # what the verdict calls usable
    report_html: str | None = None  # write the HTML report here (None: no report)

    def __post_init__(self) -> None:
        if self.every < 1:
            raise BadInput(f"--every must be at least 1, got {self.every}")
        if self.max_frames is not None and self.max_frames < 1:
            raise BadInput(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.max_frame_mismatch < 0:
            raise BadInput(f"max_frame_mismatch must be >= 0, got {self.max_frame_mismatch}")
        if self.background_margin < 0:
            raise BadInput(f"background_margin must be >= 0, got {self.background_margin}")
        if not 0.0 <= self.paste_forehead <= 1.0:
            raise BadInput(f"paste_forehead must be between 0 and 1, got {self.paste_forehead}")
        if self.seam_inset < 0 or self.seam_band <= 0:
            raise BadInput("seam_inset must be >= 0 and seam_band > 0")


@dataclass(frozen=True)
class FrameRecord:
    """Metrics of one compared frame. None = not measured (no face, not sampled, edge frame)."""

    index: int
    time: float
    target_face: bool
    output_face: bool
    expression_error: float | None = None  # expression movements output vs target (identity-neutral), per IOD
    expression_error_static: float | None = None  # landmark shape output vs target, per IOD
    expression_motion: float | None = None  # target's own expression movement (baseline), per IOD
    pose_error: float | None = None  # degrees, angle between the two head rotations
    yaw_error: float | None = None  # degrees
    pitch_error: float | None = None
    roll_error: float | None = None
    target_pose: tuple[float, float, float] | None = None  # yaw, pitch, roll (degrees)
    output_pose: tuple[float, float, float] | None = None
    landmark_jitter_output: float | None = None  # |2nd difference| per inter-ocular distance
    landmark_jitter_target: float | None = None
    pixel_jitter_output: float | None = None  # |2nd difference| in grey levels, inside the face mask
    pixel_jitter_target: float | None = None
    background_psnr: float | None = None  # dB outside the face mask (capped at 100)
    detail_output: float | None = None  # Laplacian variance of the inner face (grey levels², after a 1 px blur)
    detail_target: float | None = None
    sharpness_ratio: float | None = None  # detail_output / detail_target
    seam_delta_e: float | None = None  # colour step along the paste border that the target did not have (ΔE)
    identity_sampled: bool = False
    dist_source: float | None = None  # output face ↔ source identity
    dist_target: float | None = None  # output face ↔ target face of this frame
    target_dist_source: float | None = None  # target face ↔ source identity (baseline)
    reads_as_source: bool | None = None


@dataclass(frozen=True)
class EvalSummary:
    frames_compared: int
    frames_target_face: int  # frames with a face in the target
    frames_output_face: int  # of those, frames where the output has a face in the same place
    identity_frames: int  # sampled frames with a target face (the identity metrics' base)
    source_share: float | None  # share of identity_frames whose output face reads as the source
    identity_threshold: float  # ... i.e. is within this distance of the source and closer to it than to the target
    dist_source_mean: float | None
    dist_target_mean: float | None
    target_dist_source_mean: float | None  # how far the target person is from the source (baseline)
    expression_error: dict[str, Any]  # mean/median/p95/min/max/count, identity-neutral
    expression_error_static_mean: float | None  # includes differences of face build between people
    expression_motion_mean: float | None  # what a face frozen in its resting expression would score
    expression_error_ratio: float | None  # expression_error mean / expression_motion_mean: 0 perfect, ~1 frozen, ~1.4 unrelated
    pose_error: dict[str, Any]  # degrees
    yaw_error_mean: float | None
    pitch_error_mean: float | None
    roll_error_mean: float | None
    landmark_jitter_output: float | None
    landmark_jitter_target: float | None
    landmark_jitter_ratio: float | None  # output / target; 1.0 = as stable as the input
    pixel_jitter_output: float | None
    pixel_jitter_target: float | None
    pixel_jitter_ratio: float | None
    background_psnr: dict[str, Any]  # dB
    sharpness_ratio: float | None  # median over frames of the inner face's detail, output ÷ target (1 = as sharp)
    sharpness: dict[str, Any]  # per-frame sharpness ratios: mean/median/p95/min/max/count
    seam_delta_e: dict[str, Any]  # per-frame colour step along the paste border (ΔE); the verdict uses the median
    source_faces_used: int
    seconds: float
    verdict: dict[str, Any] | None = None  # facedub.evaluate.verdict.Verdict as a dict: usable, text, reasons, hints, bounds


@dataclass(frozen=True)
class EvalReport:
    output: str
    target: str
    source_faceset: str
    frames_output: int  # frames decoded (or the header's count when decoding stopped early)
    frames_target: int
    sampled_every: int
    config: dict[str, Any]
    summary: EvalSummary
    frames: tuple[FrameRecord, ...]
    notes: tuple[str, ...] = ()  # plain-words caveats (frame-count mismatch, missing faces, ...)
    report_html: str | None = None
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN and infinity become None)."""
        return _json_safe(asdict(self))


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# ------------------------------------------------------------------------------- helpers


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def face_mask(lm68: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    """H×W bool: convex hull of the landmarks grown by ``margin`` × inter-ocular distance."""
    import cv2

    h, w = shape
    m = np.zeros((h, w), np.uint8)
    hull = cv2.convexHull(np.round(np.asarray(lm68)).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 1)
    grow = margin * M.inter_ocular(lm68)
    if grow >= 1.0:
        dist = cv2.distanceTransform((1 - m).astype(np.uint8), cv2.DIST_L2, 3)
        return dist <= grow
    return m.astype(bool)


def _thumb(rgb: np.ndarray, side: int = 192) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return rgb.copy()
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _mean(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def source_identity(faceset_path: str | Path, max_faces: int, reporter: Reporter) -> tuple[np.ndarray, int]:
    """Mean descriptor of a faceset's faces (computing missing ones from the crops) and how many were used."""
    from facedub.faces.align import transform_points
    from facedub.faceset.store import faceset_dir, load_crop, load_faceset

    fs = load_faceset(faceset_path)
    folder = faceset_dir(faceset_path)
    faces = list(fs.faces)
    if not faces:
        raise BadInput(f"{faceset_path}: faceset has no faces")
    if len(faces) > max_faces:
        idx = np.linspace(0, len(faces) - 1, max_faces).round().astype(int)
        faces = [faces[i] for i in sorted(set(idx.tolist()))]
    descs: list[np.ndarray] = [f.descriptor_array() for f in faces if f.descriptor is not None]  # type: ignore[misc]
    missing = [f for f in faces if f.descriptor is None]
    if missing:
        from facedub.faces.identity import IdentityEncoder

        enc = IdentityEncoder()
        reporter.start("source identity", total=len(missing), unit="face")
        for f in missing:
            if reporter.should_stop():
                raise Cancelled("eval stopped")
            try:
                crop = load_crop(folder, f.file)
            except OSError as e:
                raise BadInput(f"{Path(folder) / f.file}: unreadable face crop ({e})") from None
            lm = transform_points(f.landmarks_array(), f.affine_array())
            descs.append(enc.descriptor(crop, lm))
            reporter.advance(1)
        reporter.finish()
    return M.mean_descriptor(descs), len(descs)


# ------------------------------------------------------------------------------ evaluate


def evaluate(
    output: str | Path,
    target: str | Path,
    source_faceset: str | Path,
    config: EvalConfig = EvalConfig(),
    reporter: Reporter | None = None,
) -> EvalReport:
    """Compare ``output`` with the ``target`` video it was made from and with the source faceset."""
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder

    reporter = reporter or NullReporter()
    t_start = time.perf_counter()
    output, target, source_faceset = Path(output), Path(target), Path(source_faceset)
    for p, what in ((output, "output video"), (target, "target video")):
        if not p.exists():
            raise BadInput(f"{p}: no such file ({what})")
    if not source_faceset.exists():
        raise BadInput(f"{source_faceset}: no such faceset")

    notes: list[str] = []
    vo, vt = _open_video(output, "output"), _open_video(target, "target")
    if (vo.width, vo.height) != (vt.width, vt.height):
        raise BadInput(
            f"{output}: frame size {vo.width}x{vo.height} differs from the target's {vt.width}x{vt.height} "
            f"({target}); eval compares an output with the video it was made from"
        )
    # Header counts can be estimates (from the duration): refuse up front only a clear mismatch;
    # the exact check happens while decoding.
    # With --max-frames N only the first N frames are compared: the limit applies first (a
    # 'convert --frames N' result is evaluated against the first N frames of a longer target).
    cmp_o, cmp_t = vo.frame_count, vt.frame_count
    if config.max_frames is not None:
        cmp_o, cmp_t = min(cmp_o or config.max_frames, config.max_frames), min(cmp_t or config.max_frames, config.max_frames)
    slack = config.max_frame_mismatch + 0.02 * max(cmp_o, cmp_t)
    if cmp_o and cmp_t and abs(cmp_o - cmp_t) > slack:
        raise BadInput(_mismatch(output, vo.frame_count, target, vt.frame_count, config.max_frame_mismatch))
    if vo.fps and vt.fps and abs(vo.fps - vt.fps) > 0.01 * vt.fps:
        notes.append(f"frame rates differ (output {vo.fps:.3f} fps, target {vt.fps:.3f} fps); frames are paired by index")
    src_desc, n_src = source_identity(source_faceset, config.max_source_faces, reporter)
    total = vt.frame_count or None
    if config.max_frames is not None:
        total = min(total or config.max_frames, config.max_frames)
    run = _Run(config, src_desc, FaceDetector(video_mode=False, max_faces=4), IdentityEncoder(), (vt.height, vt.width))
    it_o, it_t = vo.frames(), vt.frames()
    try:
        reporter.start("eval", total=total, unit="frame")
        n = 0
        ended: str | None = None
        while config.max_frames is None or n < config.max_frames:
            if reporter.should_stop():
                raise Cancelled("eval stopped")
            fo = next(it_o, None)
            ft = next(it_t, None)
            if fo is None or ft is None:
                ended = "both" if fo is None and ft is None else ("output" if fo is None else "target")
                if ended != "both":
                    it_long = it_t if fo is None else it_o
                    extra = 1 + _count(it_long, config.max_frame_mismatch + 1)
                    n_o, n_t = (n, n + extra) if fo is None else (n + extra, n)
                    if extra > config.max_frame_mismatch:
                        raise BadInput(_mismatch(output, n_o, target, n_t, config.max_frame_mismatch, at_least=True))
                    notes.append(
                        f"{'output' if fo is not None else 'target'} has {extra} frame(s) more than the "
                        f"{'target' if fo is not None else 'output'}; the first {n} frames were compared"
                    )
                    frames_o, frames_t = n_o, n_t
                break
            t_time, t_rgb, o_rgb = ft.time, ft.rgb, fo.rgb
            if o_rgb.shape != t_rgb.shape:
                raise BadInput(f"{output}: frame {n} has shape {o_rgb.shape}, the target's has {t_rgb.shape}")
            run.add(n, t_time, o_rgb, t_rgb)
            n += 1
            reporter.advance(1, **run.live())
        run.flush()
        reporter.finish()
    finally:
        run.close()
        it_o.close()
        it_t.close()
    if n == 0:
        raise BadInput(f"{output}: no frames to compare")
    if ended is None:  # stopped at max_frames
        frames_o, frames_t = vo.frame_count or n, vt.frame_count or n
        if config.max_frames is not None and n >= config.max_frames:
            notes.append(f"only the first {n} frames were compared (--max-frames)")
    elif ended == "both":
        frames_o = frames_t = n

    records = run.records()
    summary = _summarise(records, n_src, time.perf_counter() - t_start)
    if summary.frames_target_face == 0:
        notes.append("no face was found in any target frame; only background PSNR is meaningful")
    elif summary.frames_output_face < summary.frames_target_face:
        missing = summary.frames_target_face - summary.frames_output_face
        notes.append(f"{missing} frame(s) have a face in the target but none at that place in the output")
    if summary.target_dist_source_mean is not None and summary.target_dist_source_mean < M.SAME_PERSON_DISTANCE:
        notes.append(
            f"the target person is already within dlib's same-person distance of the source "
            f"({summary.target_dist_source_mean:.2f} < {M.SAME_PERSON_DISTANCE}): a frame counts as the source only "
            f"within facedub's stricter {M.MATCH_DISTANCE} and closer to the source than to the target; read the "
            f"share together with the distances"
        )
    summary = replace(summary, verdict=judge_summary(summary, config.bounds).to_dict())
    report = EvalReport(
        output=str(output),
        target=str(target),
        source_faceset=str(source_faceset),
        frames_output=int(frames_o),
        frames_target=int(frames_t),
        sampled_every=config.every,
        config=asdict(config),
        summary=summary,
        frames=tuple(records),
        notes=tuple(notes),
        report_html=config.report_html,
    )
    if config.report_html:
        from facedub.evaluate.report import write_html_report

        write_html_report(report, run.strip(config.strip_frames), config.report_html)
    return report


def _open_video(path: Path, what: str) -> Any:
    from facedub.media.reader import open_media

    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not a video ({what})")
    reader = open_media(path)
    if reader.kind != "video":
        raise BadInput(f"{path}: is an image, not a video ({what})")
    return reader


def _count(it: Any, limit: int) -> int:
    k = 0
    for _ in it:
        k += 1
        if k >= limit:
            break
    return k


def _mismatch(output: Path, n_o: int, target: Path, n_t: int, allowed: int, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return (
        f"{output}: {more if n_o > n_t else ''}{n_o} frames but the target {target} has {more if n_t > n_o else ''}{n_t} "
        f"(allowed difference {allowed}); eval compares an output with the target video it was made from"
    )


class _Run:
    """Per-frame state of one evaluation: detections, a 3-frame window for jitter, records."""

    def __init__(self, config: EvalConfig, src_desc: np.ndarray, detector: Any, encoder: Any, shape: tuple[int, int]) -> None:
        self.cfg = config
        self.src = src_desc
        self.det = detector
        self.enc = encoder
        self.shape = shape
        from facedub.safety.label import Labeler

        # Left out of the background comparison, grown by 4 px for chroma subsampling and codec bleed.
        ys, xs = Labeler().box(*shape)
        self.label_box = (slice(max(0, ys.start - 4), ys.stop + 4), slice(max(0, xs.start - 4), xs.stop + 4))
        self.recs: list[dict[str, Any]] = []
        # window of (record, grey_out, grey_tgt, lm_out, lm_tgt, mask) for the last 3 frames
        self.win: deque[tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]] = deque(maxlen=3)
        self.thumbs: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.ref: np.ndarray | None = None  # canonical frame for expression shapes
        self.shapes: list[tuple[int, np.ndarray, np.ndarray]] = []  # (record position, output, target)

    def add(self, index: int, t: float, o_rgb: np.ndarray, t_rgb: np.ndarray) -> None:
        cfg = self.cfg
        t_faces = self.det.detect(t_rgb)
        o_faces = self.det.detect(o_rgb)
        tf = max(t_faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]), default=None)
        of = None
        if tf is not None:
            best = max(o_faces, key=lambda f: _iou(f.bbox, tf.bbox), default=None)
            if best is not None and _iou(best.bbox, tf.bbox) >= cfg.min_face_overlap:
                of = best
        rec: dict[str, Any] = {"index": index, "time": t, "target_face": tf is not None, "output_face": of is not None}
        h, w = self.shape
        mask = None
        # Background = outside the face mask and outside facedub's visible label (a deliberate mark).
        background = np.ones((h, w), bool)
        background[self.label_box] = False
        if tf is not None:
            lm_t = tf.landmarks68
            mask = face_mask(lm_t, (h, w), cfg.background_margin)
            background &= ~mask
            rec.update(self._look(o_rgb, t_rgb, lm_t))
        rec["background_psnr"] = M.psnr(o_rgb, t_rgb, background)
        if tf is not None and of is not None:
            lm_o = of.landmarks68
            rec["expression_error_static"] = M.expression_error(lm_o, tf.landmarks68)
            if self.ref is None:
                self.ref = M.reference_rigid(tf.landmarks68)
            self.shapes.append((len(self.recs), M.canonical_shape(lm_o, self.ref), M.canonical_shape(tf.landmarks68, self.ref)))
            pt, po = head_pose(tf.landmarks68, w, h), head_pose(lm_o, w, h)
            if pt is not None and po is not None:
                rec["pose_error"] = M.rotation_angle_deg(po.rotation_matrix(), pt.rotation_matrix())
                rec["yaw_error"] = M.angle_difference_deg(po.yaw, pt.yaw)
                rec["pitch_error"] = M.angle_difference_deg(po.pitch, pt.pitch)
                rec["roll_error"] = M.angle_difference_deg(po.roll, pt.roll)
                rec["target_pose"] = (pt.yaw, pt.pitch, pt.roll)
                rec["output_pose"] = (po.yaw, po.pitch, po.roll)
        if index % cfg.every == 0 and tf is not None:
            rec["identity_sampled"] = True
            d_t = self.enc.descriptor(t_rgb, tf.landmarks68)
            rec["target_dist_source"] = M.descriptor_distance(d_t, self.src)
            if of is not None:
                d_o = self.enc.descriptor(o_rgb, of.landmarks68)
                rec["dist_source"] = M.descriptor_distance(d_o, self.src)
                rec["dist_target"] = M.descriptor_distance(d_o, d_t)
                rec["reads_as_source"] = M.reads_as_source(rec["dist_source"], rec["dist_target"])
            else:
                rec["reads_as_source"] = False
        if index % cfg.every == 0:
            self.thumbs.append((index, _thumb(t_rgb), _thumb(o_rgb)))
        self.recs.append(rec)
        self.win.append(
            (
                rec,
                M._grey(o_rgb).astype(np.float32),
                M._grey(t_rgb).astype(np.float32),
                of.landmarks68 if of is not None else None,
                tf.landmarks68 if tf is not None else None,
                mask,
            )
        )
        if len(self.win) == 3:
            self._jitter()

    def _look(self, o_rgb: np.ndarray, t_rgb: np.ndarray, lm_t: np.ndarray) -> dict[str, float | None]:
        """Sharpness and seam of one frame, placed by the target's landmarks."""
        from facedub.faces.align import CROP_SIZE, align_matrix, face_outline, points5_from_68, scale_of

        cfg = self.cfg
        shape = self.shape
        inner = M.inner_face_mask(lm_t, shape)
        d_o, d_t = M.detail(o_rgb, inner), M.detail(t_rgb, inner)
        size = CROP_SIZE / max(scale_of(align_matrix(points5_from_68(lm_t))), 1e-9)  # convert's "face size"
        band = max(2.0, cfg.seam_band * size)
        a, margin = cfg.seam_inset * size, max(1.0, 0.01 * size)
        outline = M.polygon_mask(face_outline(lm_t, cfg.paste_forehead), shape)
        seam = M.seam_step(o_rgb, t_rgb, outline, (a, a + band), (margin, margin + band))

        def f(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {"detail_output": f(d_o), "detail_target": f(d_t), "sharpness_ratio": f(M.ratio(d_o, d_t)), "seam_delta_e": f(seam)}

    def _jitter(self) -> None:
        (_, go0, gt0, lo0, lt0, _), (rec, go1, gt1, lo1, lt1, mask), (_, go2, gt2, lo2, lt2, _) = self.win
        if lt1 is None or mask is None:
            return
        # consecutive frames only (the window always is: frames are added in order)
        rec["pixel_jitter_output"] = M.masked_second_difference(go0, go1, go2, mask)
        rec["pixel_jitter_target"] = M.masked_second_difference(gt0, gt1, gt2, mask)
        if all(x is not None for x in (lo0, lo1, lo2, lt0, lt2)):
            iod = M.inter_ocular(lt1)
            if iod > 1e-6:
                rec["landmark_jitter_output"] = M.second_difference_jitter(lo0, lo1, lo2, iod)  # type: ignore[arg-type]
                rec["landmark_jitter_target"] = M.second_difference_jitter(lt0, lt1, lt2, iod)  # type: ignore[arg-type]

    def live(self) -> dict[str, float]:
        if not self.recs:
            return {}
        r = self.recs[-1]
        out = {}
        if r.get("expression_error_static") is not None:
            out["expr"] = round(float(r["expression_error_static"]), 4)
        return out

    def flush(self) -> None:
        """End of video: fill in the metrics that need every frame (expression dynamics)."""
        self.win.clear()
        if self.shapes:
            pos = [p for p, _, _ in self.shapes]
            so = np.stack([o for _, o, _ in self.shapes])
            st = np.stack([t for _, _, t in self.shapes])
            err = M.expression_dynamics_error(so, st)
            motion = M.expression_motion(st)
            for p, e, mo in zip(pos, err, motion):
                self.recs[p]["expression_error"] = float(e)
                self.recs[p]["expression_motion"] = float(mo)

    def records(self) -> list[FrameRecord]:
        return [FrameRecord(**r) for r in self.recs]

    def strip(self, k: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        if k <= 0 or not self.thumbs:
            return []
        idx = sorted(set(np.linspace(0, len(self.thumbs) - 1, min(k, len(self.thumbs))).round().astype(int).tolist()))
        return [self.thumbs[i] for i in idx]

    def close(self) -> None:
        self.det.close()


def _summarise(records: list[FrameRecord], n_src: int, seconds: float) -> EvalSummary:
    def col(name: str) -> list[Any]:
        return [getattr(r, name) for r in records]

    ident = [r for r in records if r.identity_sampled]
    share = float(np.mean([bool(r.reads_as_source) for r in ident])) if ident else None
    lj = [r for r in records if r.landmark_jitter_output is not None and r.landmark_jitter_target is not None]
    pj = [
        r
        for r in records
        if r.pixel_jitter_output is not None
        and r.pixel_jitter_target is not None
        and math.isfinite(r.pixel_jitter_output)
        and math.isfinite(r.pixel_jitter_target)
    ]
    lj_o = _mean([r.landmark_jitter_output for r in lj])
    lj_t = _mean([r.landmark_jitter_target for r in lj])
    pj_o = _mean([r.pixel_jitter_output for r in pj])
    pj_t = _mean([r.pixel_jitter_target for r in pj])

    def rat(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return None
        v = M.ratio(a, b)
        if math.isnan(v) and a == 0 and b == 0:
            return 1.0
        return None if math.isnan(v) else v

    return EvalSummary(
        frames_compared=len(records),
        frames_target_face=sum(r.target_face for r in records),
        frames_output_face=sum(r.target_face and r.output_face for r in records),
        identity_frames=len(ident),
        source_share=share,
        identity_threshold=M.MATCH_DISTANCE,
        dist_source_mean=_mean(col("dist_source")),
        dist_target_mean=_mean(col("dist_target")),
        target_dist_source_mean=_mean(col("target_dist_source")),
        expression_error=M.summarise(col("expression_error")),
        expression_error_static_mean=_mean(col("expression_error_static")),
        expression_motion_mean=_mean(col("expression_motion")),
        expression_error_ratio=rat(M.summarise(col("expression_error"))["mean"], _mean(col("expression_motion"))),
        pose_error=M.summarise(col("pose_error")),
        yaw_error_mean=_mean(col("yaw_error")),
        pitch_error_mean=_mean(col("pitch_error")),
        roll_error_mean=_mean(col("roll_error")),
        landmark_jitter_output=lj_o,
        landmark_jitter_target=lj_t,
        landmark_jitter_ratio=rat(lj_o, lj_t),
        pixel_jitter_output=pj_o,
        pixel_jitter_target=pj_t,
        pixel_jitter_ratio=rat(pj_o, pj_t),
        background_psnr=M.summarise(col("background_psnr")),
        sharpness_ratio=M.summarise(col("sharpness_ratio"))["median"],
        sharpness=M.summarise(col("sharpness_ratio")),
        seam_delta_e=M.summarise(col("seam_delta_e")),
        source_faces_used=n_src,
        seconds=round(seconds, 3),
    )
