"""Convert: swap the target person's face in every frame of a video (or one image).

A streaming pipeline of threads joined by bounded queues, so decoding, detection, model
inference, blending and encoding overlap (torch, OpenCV, mediapipe and PyAV release the GIL
while they compute)::

    decode ─▶ detect + choose the target face ─▶ bridge gaps, smooth, align, batch
           ─▶ model workers (batches side by side) ─▶ back in frame order: mask, colour,
              blend, mark ─▶ encode ─▶ progress (calling thread)

On a CPU the model runs as two workers of one thread each rather than one worker of two
threads: two single-threaded batches never wait for each other at the per-layer barriers
of an intra-op parallel run, so the cheap stages can take a core for a moment without
stalling the model (see :func:`model_parallelism`).

Per frame: the target's 68 landmarks are smoothed over time (one-euro filter), aligned
exactly as training cut its inputs (``align_matrix`` → 256 px crop → ``crop_to_model``),
decoded with the *source* decoder, and pasted back with the inverse affine inside a soft
mask (learned mask ∩ landmark hull ∩ model square, eroded and feathered) after a colour
transfer; pixels outside the mask are left bit-identical. Frames without the target's face
pass through unchanged; dropouts of up to ``max_gap`` frames are bridged by interpolating the
landmarks. The audio is copied packet for packet (see :mod:`facedub.media.writer`).

Safety and provenance go through :mod:`facedub.safety.policy` at three points:
``begin_output`` (consent of both identities and the content gate, before any work),
``mark_frame`` (watermark and label on every output frame) and ``finalize_output`` (tags,
C2PA and manifest on the finished file, before it appears under its final name).
``reverse`` swaps the other way round (the model's target identity into its source
person's footage) with the same machinery.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np

from facedub.convert import blend as blend_mod
from facedub.convert import color as color_mod
from facedub.convert import mask as mask_mod
from facedub.convert import occlusion as occ_mod
from facedub.convert.config import ConvertConfig
from facedub.convert.cuts import CutDetector
from facedub.convert.smoothing import OneEuroFilter, interpolate
from facedub.errors import BadInput, Cancelled, FacedubError, ModelMismatch
from facedub.faces.align import CROP_SIZE, align_matrix, compose, crop_to_model_matrix, face_outline, inner_cut, points5_from_68, resize_to_model, scale_of, transform_points, warp
from facedub.progress import NullReporter, Reporter
from facedub.safety import policy

IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg")

# Auto erosion / feather as shares of the face size (the 256 px crop's side in frame pixels).
AUTO_ERODE = 0.015
AUTO_FEATHER = 0.05


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvertSummary:
    output: str  # the file written
    kind: str  # "video" or "image"
    frames: int  # frames written (= frames read)
    swapped: int  # frames whose target face was replaced (bridged ones included)
    bridged: int  # of those, frames whose landmarks were interpolated over a dropout
    no_face: int  # frames passed through unchanged (no target face)
    width: int
    height: int
    fps: float
    audio: bool  # the output carries the input's audio
    seconds: float  # wall time of the whole conversion
    frames_per_second: float  # frames / seconds
    jitter_raw: float | None  # landmark jitter of the detections (face widths / frame²)
    jitter_smoothed: float | None  # the same after temporal smoothing (what is pasted)
    busy: dict[str, float] = field(default_factory=dict)  # seconds each stage spent working (summed over its threads)
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds: checks (consent, content gate, model load), frames, finish (tags, C2PA, manifest)
    warnings: tuple[str, ...] = ()
    precision: str = "fp32"  # the model's arithmetic as run: fp32, bf16 or fp16
    detail_scale: int = 1  # the detail stage's upscale of the decoded face (1 = no detail stage ran)
    cuts: int = 0  # shot cuts detected (smoothing, bridging, colour and identity start afresh at each)
    identity_checks: int = 0  # face descriptors computed to tell the target person from others

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PreviewResult:
    output: str  # the before/after PNG
    frame: int  # frame index shown
    face_found: bool
    seconds: float


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------
class _Detector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Any]: ...


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def model_parallelism(config: ConvertConfig, device_type: str, cores: int) -> tuple[int, int]:
    """(model workers, torch threads per worker) for ``config`` on a device of ``device_type``.

    A GPU serialises batches anyway: one worker. A CPU with two or more cores: two workers
    sharing the cores out (2 cores: 2 × 1 thread; 8 cores: 2 × 4 threads). Explicit
    ``config.workers`` / ``config.threads`` win.
    """
    if device_type != "cpu":
        return config.workers or 1, config.threads or cores
    workers = config.workers or (2 if cores >= 2 else 1)
    return workers, config.threads or max(1, cores // workers)


def encoder_threads(width: int, height: int) -> int:
    """x264 threads for the output: one up to 720p, else x264's own choice (0).

    The other stages already keep every core busy; a second x264 thread only adds
    synchronisation (≈1 ms more CPU per 512² frame, measured). One x264 ``veryfast`` thread
    encodes ≈200 frames/s at 512² (measured), so roughly 55 at 720p (3.5× the pixels; an
    estimate), still above what the model allows on a CPU; beyond 720p one thread could
    become the slowest stage.
    """
    return 1 if width * height <= 1280 * 720 else 0


def decoder_threads(width: int, height: int) -> int | None:
    """Video decoder threads for the input: one up to 1080p, else FFmpeg's own choice (None).

    Like the encoder: the stages already keep every core busy, and FFmpeg's frame threads
    cost CPU to hand frames over (512²: ≈1.0 ms a frame on one thread, 1.3–1.9 ms with
    FFmpeg's choice of three, measured). One thread decodes a 1080p H.264 frame in roughly
    8× the 512² time (an estimate from the pixel count), still well above the model's rate.
    """
    return 1 if width * height <= 1920 * 1080 else None


@contextlib.contextmanager
def _opencv_threads(n: int) -> Iterator[None]:
    """OpenCV's own thread pool set to ``n`` for the run (the pipeline's stages are the parallelism)."""
    import cv2

    old = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


def finished_batches(workers: int, batch: int) -> int:
    """How many finished batches may wait for the blender: room for 2 per worker + 2 at 8 faces a
    batch, fewer for bigger batches, so that about as many frames are held whatever ``batch`` is
    (at 4K a frame is 25 MB)."""
    return max(2, (2 * workers + 2) * 8 // max(batch, 1))


def load_convert_model(model: Any, device: str | None = None) -> Any:
    """A loaded model (anything with ``.net``, ``.config.size``/``.coverage``, ``.meta``) or a folder."""
    if hasattr(model, "net"):
        return model
    folder = Path(model)
    if not folder.is_dir():
        raise ModelMismatch(f"{folder}: not a facedub model folder (no such folder)")
    from facedub.model import load_model

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return load_model(folder, device)
    except FacedubError:
        raise
    except Exception as e:  # a broken file must still be a one-line error
        raise ModelMismatch(f"{folder}: not a usable facedub model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def occlusion_model(config: ConvertConfig, model: Any = None) -> "occ_mod.OcclusionModel | None":
    """The occlusion model ``config.occlusion`` asks for: ``None`` when off; for ``auto`` the model
    folder's own ``occlusion.safetensors`` when it has one, else the generic one in the package."""
    if config.occlusion == "off":
        return None
    own = Path(model) / occ_mod.PROJECT_WEIGHTS if isinstance(model, (str, os.PathLike)) else None
    return occ_mod.load_occlusion(own if own is not None and own.is_file() else None)


class _Runner:
    """Runs one decoder (the source's, or the target's when reversed) on batches of uint8 model inputs."""

    def __init__(self, model: Any, reverse: bool = False, precision: str = "fp32", detail: str = "off") -> None:
        import torch

        from facedub.model.precision import resolve_precision

        # The swap decodes with the *other* identity's decoder: normally the source's.
        self.side = "target" if reverse else "source"
        self.net = model.net
        self.net.eval()
        self.size = int(model.config.size)
        self.coverage = float(model.config.coverage)
        try:
            self.device = next(self.net.parameters()).device
        except StopIteration:
            self.device = torch.device("cpu")
        self.amp_dtype = resolve_precision(precision, self.device)  # None = plain fp32
        self.precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        # The per-identity detail stage (facedub.convert.detail): a larger, sharper face when the
        # model folder has one trained for these weights; ``detail_note`` says why one was skipped.
        self.detail, self.detail_note = None, None
        if detail == "auto":
            from facedub.convert.detail import load_detail

            self.detail, self.detail_note = load_detail(model, self.side)
        self.out_size = self.size * (self.detail.config.scale if self.detail is not None else 1)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            with torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None else contextlib.nullcontext():
                rgb, mask = self.net(x, self.side)
                if self.detail is not None:
                    rgb = self.detail.net(rgb.float().clamp(0, 1))
            rgb_np = rgb.float().clamp(0, 1).mul(255.0).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
            mask_np = None if mask is None else mask[:, 0].float().clamp(0, 1).contiguous().cpu().numpy()
        return rgb_np, mask_np


# ---------------------------------------------------------------------------------------
# Per-frame pieces
# ---------------------------------------------------------------------------------------
@dataclass
class _Item:
    index: int
    time: float
    rgb: np.ndarray
    lm: np.ndarray | None = None  # target's 68 landmarks as detected (frame px)
    bridged: bool = False
    cut: bool = False  # the first frame of a new shot (smoothing, bridging and colour start afresh)
    lm_s: np.ndarray | None = None  # smoothed landmarks actually used
    align: np.ndarray | None = None  # frame → 256 crop
    m: np.ndarray | None = None  # frame → model input (exact geometry of crop_to_model)
    x: np.ndarray | None = None  # model input uint8 S×S×3
    face: np.ndarray | None = None  # model output uint8 S×S×3
    face_mask: np.ndarray | None = None  # learned mask S×S or None
    occ_x: np.ndarray | None = None  # occlusion model input uint8 (occlusion on)
    occ_m: np.ndarray | None = None  # frame → occlusion input matrix
    visible: np.ndarray | None = None  # visible-face probability from the occlusion model
    out: np.ndarray | None = None  # output frame


# The exact crop → model matrix lives in facedub.faces.align (one definition for train and convert).
crop_to_model_exact = crop_to_model_matrix


def model_input(rgb: np.ndarray, lm68: np.ndarray, coverage: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align as training did: frame → 256 crop (``warp``) → ``crop_to_model``.

    Only the part of the crop that ``crop_to_model`` keeps (``crop[lo:hi, lo:hi]``) is warped:
    the same pixel grid, so the same pixels (up to OpenCV's fixed-point rounding, ±1 on under
    1 % of them), at (hi − lo)² / 256² of the cost.
    Returns (model input uint8 S×S×3, frame→crop matrix, exact frame→model matrix).
    """
    a = align_matrix(points5_from_68(lm68))
    lo, hi = inner_cut(coverage)
    shifted = a.copy()
    shifted[:, 2] -= lo
    x = resize_to_model(warp(rgb, shifted, hi - lo), size)
    return np.ascontiguousarray(x), a, compose(crop_to_model_exact(coverage, size), a)


def face_size(frame_to_crop: np.ndarray) -> float:
    """Side of the 256 px aligned crop, in frame pixels."""
    return CROP_SIZE / max(scale_of(frame_to_crop), 1e-9)


class _Compositor:
    """Mask → colour → blend for one face, with colour statistics smoothed over time.

    With the occlusion model's visible-face map, what is in front of the face (a hand, a
    microphone, glasses) is cut out of the paste mask and of the colour statistics. The last
    paste mask is kept (``last_mask``) for the preview's mask panel.
    """

    def __init__(self, config: ConvertConfig, size: int) -> None:
        self.config = config
        self.size = size
        self._src_stats: color_mod.LabStats | None = None
        self._ref_stats: color_mod.LabStats | None = None
        self.record = False  # keep the last paste mask (previews)
        self.last_mask: tuple[blend_mod.Region, np.ndarray, np.ndarray | None] | None = None  # (ROI, paste mask, hidden face)

    def reset(self) -> None:
        self._src_stats = self._ref_stats = None

    def paste(
        self,
        frame: np.ndarray,
        face: np.ndarray,
        learned: np.ndarray | None,
        face_in: np.ndarray,
        lm68: np.ndarray,
        frame_to_model: np.ndarray,
        frame_to_crop: np.ndarray,
        visible: np.ndarray | None = None,
        frame_to_seg: np.ndarray | None = None,
    ) -> np.ndarray:
        """Paste ``face`` (model output for the model input ``face_in``) into ``frame`` in place.

        ``visible`` is the occlusion model's visible-face map and ``frame_to_seg`` maps the
        frame into its pixels (both ``None``: occlusion off)."""
        cfg = self.config
        self.last_mask = None
        size = self.size
        if face.shape[0] != size:  # a detail stage made the face larger: work at its size
            import cv2

            k = face.shape[0] / size
            frame_to_model = compose(np.array([[k, 0.0, (k - 1) / 2], [0.0, k, (k - 1) / 2]]), frame_to_model)
            size = face.shape[0]
            face_in = cv2.resize(face_in, (size, size), interpolation=cv2.INTER_LINEAR)
            if learned is not None:
                learned = cv2.resize(learned, (size, size), interpolation=cv2.INTER_LINEAR)
        if visible is not None and frame_to_seg is not None:
            # A face the network cannot read at all: the landmark mask alone decides.
            if not occ_mod.readable(visible, transform_points(face_outline(lm68, cfg.forehead), frame_to_seg)):
                visible = frame_to_seg = None
        region = blend_mod.square_region(frame_to_model, size, frame.shape[:2])
        if region is None:
            return frame
        use_learned = learned is not None and cfg.mask in ("learned-hull", "learned")
        use_hull = cfg.mask == "hull" or (cfg.mask == "learned-hull") or (cfg.mask == "learned" and not use_learned)
        outline = face_outline(lm68, cfg.forehead)  # the landmarks, and the forehead above the brows
        # Colour transfer in model space (cheap: S×S pixels), measured inside the face.
        if cfg.color != "none":
            cmask = mask_mod.hull_mask(transform_points(outline, frame_to_model), (size, size))
            if use_learned:
                cmask = mask_mod.intersect(cmask, learned)
            if visible is not None and frame_to_seg is not None:
                cmask = mask_mod.intersect(cmask, occ_mod.visible_in(visible, frame_to_seg, frame_to_model, size) >= 0.5)
            face = self._color(face, face_in, cmask)
        if cfg.sharpen > 0:
            face = blend_mod.sharpen(face, cfg.sharpen)
        m_roi = blend_mod.region_matrix(frame_to_model, region)
        face_roi = blend_mod.warp_back(face, m_roi, region)
        pts = outline - (region.x0, region.y0) if use_hull else None
        fs = face_size(frame_to_crop)
        erode_px = cfg.erode if cfg.erode is not None else int(round(AUTO_ERODE * fs))
        feather_px = cfg.feather if cfg.feather is not None else max(1, int(round(AUTO_FEATHER * fs)))
        seg_roi = None if visible is None or frame_to_seg is None else blend_mod.region_matrix(frame_to_seg, region)
        mask = mask_mod.paste_mask(
            (region.height, region.width), pts, m_roi, size, learned if use_learned else None, erode_px, feather_px,
            visible=None if seg_roi is None else visible, visible_to_roi=seg_roi,
        )
        if self.record:  # for the preview: the paste mask, and the face found hidden
            hidden = None
            if seg_roi is not None:
                reach = mask_mod.hull_mask(outline - (region.x0, region.y0), (region.height, region.width)) > 0.5
                hidden = reach & (blend_mod.warp_back(visible, seg_roi, region, fill=1.0) < 0.5)
            self.last_mask = (region, mask, hidden)
        if not mask.any():
            return frame
        sl = region.slices()
        frame[sl] = blend_mod.blend(face_roi, frame[sl], mask, cfg.blend)
        return frame

    def _color(self, face: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mode = self.config.color
        if mode == "none":
            return face
        if mode == "hist":
            return color_mod.histogram_match(face, bg, mask)
        lab = color_mod.to_lab(face)
        s = color_mod.lab_stats(face, mask, lab)
        r = color_mod.lab_stats(bg, mask)
        if s is None or r is None:
            return face
        keep = self.config.color_smoothing
        self._src_stats = color_mod.blend_stats(self._src_stats, s, keep)
        self._ref_stats = color_mod.blend_stats(self._ref_stats, r, keep)
        return color_mod.reinhard_apply(face, self._src_stats, self._ref_stats, lab)


# Shares of the face's box: a track whose box moves by more than this between frames, or
# whose size changes by more than this factor, is checked again (someone else may hold it).
JUMP_SHIFT = 0.5
JUMP_SCALE = 1.5
# Mean |difference| of a track's 16×16 aligned appearance thumbnails (gain-free) from one frame
# to the next above which the track is checked again. Measured: one person from frame to frame
# ≤ 0.03 (GRID) and ≤ 0.11 (512² talking head; 99 % under 0.09); two different people ≥ 0.12
# (GRID speakers in the same studio) and 0.52 (aiface1 / aiface2). A false alarm costs one
# descriptor; a miss lets another person keep the swap until the next periodic check.
APPEARANCE_CHANGE = 0.1
# How much farther than ``max_distance`` a track already taken for the target may measure on a
# periodic re-check and stay taken (no sign of another person: no jump, no change of look).
HOLD_MARGIN = 0.1


def appearance(rgb: np.ndarray, lm68: np.ndarray) -> np.ndarray:
    """16×16 float32 aligned thumbnail of a face divided by its mean (brightness-free): what a
    track looks like, compared from frame to frame to notice another person taking it over."""
    import cv2

    a = align_matrix(points5_from_68(np.asarray(lm68, dtype=np.float64)), 64)
    t = cv2.resize(cv2.warpAffine(rgb, a, (64, 64), flags=cv2.INTER_LINEAR), (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
    return t / (float(t.mean()) + 1.0)


@dataclass
class _TrackState:
    checked: int  # frame of the last identity check
    distance: float  # descriptor distance to the target then
    box: tuple[float, float, float, float]  # box in the previous frame
    look: np.ndarray  # appearance thumbnail in the previous frame
    overlapped: bool  # overlapped another face in the previous frame
    target: bool  # taken for the target person at the last check


def _box_jumped(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    size = max(min(wa, ha), 1.0)
    shift = float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))
    ratio = max(wa * ha, 1.0) / max(wb * hb, 1.0)
    return shift > JUMP_SHIFT * size or not (1 / JUMP_SCALE**2 <= ratio <= JUMP_SCALE**2)


def _overlaps(box: tuple[float, ...], others: list[tuple[float, ...]]) -> bool:
    return any(min(box[2], o[2]) > max(box[0], o[0]) and min(box[3], o[3]) > max(box[1], o[1]) for o in others)


class _TargetChooser:
    """Decides in every frame which detected face, if any, is the target person's.

    With the model's target descriptor (dlib, the mean over the target faceset), a face is
    taken only if its descriptor lies within ``max_distance`` of it — also when it is alone in
    the frame, so after a cut to someone else nobody is swapped. A descriptor costs 100–250 ms,
    so it is computed per face *track* (the detector's track ids) and cached: when the track is
    first seen, every ``identity_every`` frames, after a cut (``reset``), and at once when the
    track may have changed hands — its box jumps, its appearance thumbnail changes abruptly
    (two people swapping places under one track id), or it stops overlapping another face (two
    people crossing). Faces without a track id are checked in every frame. Among several
    matches the closest is taken. A track taken for the target and unchanged since keeps it on
    a periodic re-check up to ``max_distance + HOLD_MARGIN``.

    Without a target descriptor (models trained before descriptors were stored): the only face,
    or the largest of several, unchecked (the summary says so).
    """

    def __init__(self, target_descriptor: np.ndarray | None, config: ConvertConfig, encoder_factory: Callable[[], Any] | None = None) -> None:
        self.target = None if target_descriptor is None else np.asarray(target_descriptor, dtype=np.float64)
        self.every = max(1, config.identity_every)
        self.max_distance = config.max_distance
        self._factory = encoder_factory
        self._encoder: Any = None
        self._tracks: dict[int, _TrackState] = {}
        self._frame = 0
        self.descriptor_calls = 0
        self.seconds = 0.0  # time spent on identity (descriptors and appearance thumbnails)

    def reset(self) -> None:
        """A cut: forget every track's identity, so each face is checked again."""
        self._tracks.clear()

    def _distance(self, rgb: np.ndarray, face: Any) -> float:
        if self._encoder is None:
            if self._factory is not None:
                self._encoder = self._factory()
            else:
                from facedub.faces.identity import IdentityEncoder

                self._encoder = IdentityEncoder()
        self.descriptor_calls += 1
        d = np.asarray(self._encoder.descriptor(rgb, face.landmarks68), dtype=np.float64)
        return float(np.linalg.norm(d - self.target))

    def choose(self, rgb: np.ndarray, faces: list[Any]) -> Any | None:
        self._frame += 1
        if self.target is None:
            if not faces:
                return None
            return max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        t0 = time.perf_counter()
        try:
            return self._choose(rgb, faces)
        finally:
            self.seconds += time.perf_counter() - t0

    def _choose(self, rgb: np.ndarray, faces: list[Any]) -> Any | None:
        best, best_d = None, float("inf")
        boxes = [tuple(float(v) for v in f.bbox) for f in faces]
        seen: dict[int, _TrackState] = {}
        for k, f in enumerate(faces):
            track = int(getattr(f, "track", -1))
            box = boxes[k]
            overlapped = _overlaps(box, boxes[:k] + boxes[k + 1 :])
            look = appearance(rgb, f.landmarks68) if track >= 0 else None
            st = self._tracks.get(track) if track >= 0 else None
            changed_hands = (
                st is None
                or _box_jumped(st.box, box)
                or (st.overlapped and not overlapped)
                or float(np.abs(look - st.look).mean()) > APPEARANCE_CHANGE  # type: ignore[operator]
            )
            if changed_hands or self._frame - st.checked >= self.every:  # type: ignore[union-attr]
                d = self._distance(rgb, f)
                checked = self._frame
                # A track already taken for the target, unchanged since, keeps it on a periodic
                # re-check up to ``max_distance + HOLD_MARGIN`` (a turned head measures farther).
                held = not changed_hands and st is not None and st.target and d <= self.max_distance + HOLD_MARGIN
                target = d <= self.max_distance or held
            else:
                assert st is not None
                d, checked, target = st.distance, st.checked, st.target
            if track >= 0 and look is not None:
                seen[track] = _TrackState(checked, d, box, look, overlapped, target)
            if target and d < best_d:
                best, best_d = f, d
        self._tracks = seen  # tracks not in this frame are forgotten
        return best


class _Bridger:
    """Fills face dropouts of at most ``max_gap`` frames by interpolating the landmarks, inside
    a shot only (an item marked ``cut`` ends the shot before it)."""

    def __init__(self, max_gap: int) -> None:
        self.max_gap = max_gap
        self._last: _Item | None = None
        self._held: list[_Item] = []

    def push(self, item: _Item) -> list[_Item]:
        if item.cut:
            # Never bridge across a cut: frames held before it stay without a face.
            held, self._held, self._last = self._held, [], None
            return held + self._push(item)
        return self._push(item)

    def _push(self, item: _Item) -> list[_Item]:
        if item.lm is None:
            if self._last is None or self.max_gap == 0:
                return [item]
            self._held.append(item)
            if len(self._held) > self.max_gap:
                out, self._held, self._last = self._held, [], None
                return out
            return []
        out: list[_Item] = []
        if self._held:
            assert self._last is not None and self._last.lm is not None
            a, b = self._last.lm, item.lm
            # A face that jumped (another person, a cut) is not bridged.
            width = np.ptp(a[:, 0]) + 1e-6
            if np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) < 0.5 * width:
                for h, lm in zip(self._held, interpolate(a, b, len(self._held))):
                    h.lm, h.bridged = lm, True
            out, self._held = self._held, []
        self._last = item
        out.append(item)
        return out

    def flush(self) -> list[_Item]:
        out, self._held, self._last = self._held, [], None
        return out


class _Jitter:
    """Accumulates landmark acceleration of raw and smoothed 5-point tracks over face runs."""

    def __init__(self) -> None:
        self.raw: list[np.ndarray] = []
        self.smooth: list[np.ndarray] = []
        self.scale: list[float] = []
        self.sum_raw = self.sum_smooth = 0.0
        self.n = 0

    def add(self, raw5: np.ndarray, smooth5: np.ndarray, scale: float) -> None:
        self.raw.append(raw5)
        self.smooth.append(smooth5)
        self.scale.append(scale)
        if len(self.raw) >= 3:
            r, s = self.raw[-3:], self.smooth[-3:]
            sc = self.scale[-2]
            self.sum_raw += float(np.linalg.norm(r[2] - 2 * r[1] + r[0], axis=1).mean()) / sc
            self.sum_smooth += float(np.linalg.norm(s[2] - 2 * s[1] + s[0], axis=1).mean()) / sc
            self.n += 1
            del self.raw[0], self.smooth[0], self.scale[0]

    def reset(self) -> None:
        self.raw, self.smooth, self.scale = [], [], []

    def result(self) -> tuple[float | None, float | None]:
        if self.n == 0:
            return None, None
        return self.sum_raw / self.n, self.sum_smooth / self.n


class _Smoother:
    def __init__(self, config: ConvertConfig, fps: float) -> None:
        self.enabled = config.smooth == "one-euro"
        self.filter = OneEuroFilter(config.min_cutoff, config.beta)
        self.fps = fps if fps > 0 else 25.0
        self.jitter = _Jitter()

    def reset(self) -> None:
        self.filter.reset()
        self.jitter.reset()

    def __call__(self, item: _Item) -> np.ndarray:
        assert item.lm is not None
        p5 = points5_from_68(item.lm)
        scale = float(np.linalg.norm(p5[1] - p5[0])) * 2.0 + 1e-6  # ≈ a face width
        out = self.filter(item.lm, item.index / self.fps, scale) if self.enabled else item.lm
        if not item.bridged:
            self.jitter.add(p5, points5_from_68(out), scale)
        return out


# ---------------------------------------------------------------------------------------
# Thread plumbing
# ---------------------------------------------------------------------------------------
_END = object()


class _Stopped(Exception):
    pass


class _Pipeline:
    def __init__(self, queue_size: int) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.busy: dict[str, float] = {}
        self.threads: list[threading.Thread] = []
        self.queue_size = queue_size
        self._lock = threading.Lock()

    def queue(self, size: int | None = None) -> "queue.Queue[Any]":
        return queue.Queue(maxsize=size or self.queue_size)

    def put(self, q: "queue.Queue[Any]", item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, q: "queue.Queue[Any]") -> Any:
        while True:
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                if self.stop.is_set():
                    raise _Stopped from None

    def items(self, q: "queue.Queue[Any]") -> Iterable[Any]:
        while True:
            item = self.get(q)
            if item is _END:
                return
            yield item

    def add_busy(self, name: str, seconds: float) -> None:
        with self._lock:
            self.busy[name] = self.busy.get(name, 0.0) + seconds

    def spawn(self, name: str, fn: Callable[[], None], nice: int = 0) -> None:
        def run() -> None:
            if nice > 0 and hasattr(os, "setpriority"):
                try:  # Linux: per-thread niceness (the thread ends with the conversion)
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
                except OSError:
                    pass
            try:
                fn()
            except _Stopped:
                pass
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                with self._lock:
                    self.errors.append(e)
                self.stop.set()

        t = threading.Thread(target=run, name=f"facedub-convert-{name}", daemon=True)
        self.threads.append(t)
        t.start()

    def shutdown(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def raise_error(self) -> None:
        if self.errors:
            raise self.errors[0]


# ---------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------
def _check_paths(target: Path, out: Path, kind: str) -> None:
    if out.exists() and out.is_dir():
        raise BadInput(f"{out}: is a folder; give a file name for the output")
    if not out.parent.is_dir():
        raise BadInput(f"{out}: folder {out.parent} does not exist")
    same = out.resolve() == target.resolve()
    if not same and out.exists():
        try:
            same = os.path.samefile(out, target)
        except OSError:
            pass
    if same:
        raise BadInput(f"{out}: output would overwrite the input; choose another name")
    if kind == "image" and out.suffix.lower() not in IMAGE_OUTPUTS:
        raise BadInput(f"{out}: the target is an image, so the output must be {', '.join(IMAGE_OUTPUTS)}")
    if kind == "video":
        from facedub.safety.provenance import VIDEO_SUFFIXES

        # Only containers that carry every mark: tags, Content Credentials (C2PA) and the pixels.
        if out.suffix.lower() not in VIDEO_SUFFIXES:
            raise BadInput(f"{out}: the target is a video, so the output must be {', '.join(VIDEO_SUFFIXES)} (the formats facedub can sign with Content Credentials)")


def _open_target(target: Path) -> Any:
    from facedub.media.reader import open_media

    reader = open_media(target)
    if reader.kind == "folder":
        raise BadInput(f"{target}: is a folder; convert takes one video or one image")
    return reader


def _model_meta(model: Any) -> dict[str, Any]:
    meta = getattr(model, "meta", None)
    return dict(meta) if isinstance(meta, dict) else {}


def _target_descriptor(meta: dict[str, Any], reverse: bool = False) -> np.ndarray | None:
    """Mean descriptor of the person whose face is replaced (the model's source person when reversed)."""
    d = meta.get("source_descriptor" if reverse else "target_descriptor")
    if d is None:
        return None
    arr = np.asarray(d, dtype=np.float64).reshape(-1)
    return arr if arr.size == 128 and np.isfinite(arr).all() else None


def _make_detector(video_mode: bool) -> Any:
    from facedub.faces.detect import FaceDetector

    return FaceDetector(video_mode=video_mode)


def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()


# ---------------------------------------------------------------------------------------
# Sinks
# ---------------------------------------------------------------------------------------
class _ImageSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.frame: np.ndarray | None = None

    def write(self, rgb: np.ndarray, time: float | None = None) -> None:
        self.frame = rgb

    def close(self) -> None:
        from PIL import Image

        assert self.frame is not None
        img = Image.fromarray(np.ascontiguousarray(self.frame))
        if self.path.suffix.lower() == ".png":
            img.save(self.path, format="PNG", compress_level=1)
        else:
            img.save(self.path, format="JPEG", quality=95)

    def abort(self) -> None:
        pass


# ---------------------------------------------------------------------------------------
# The stage function
# ---------------------------------------------------------------------------------------
def convert_video(
    target: str | os.PathLike[str],
    model: Any,
    out: str | os.PathLike[str],
    config: ConvertConfig | None = None,
    reporter: Reporter | None = None,
    *,
    detector: _Detector | None = None,
    identity: Callable[[], Any] | None = None,
) -> ConvertSummary:
    """Swap the target person's face in ``target`` (a video or one image) and write ``out``.

    ``model`` is a model folder or an already loaded model (``facedub.model.load_model``).
    ``detector`` (an object with ``detect(rgb)``) and ``identity`` (a factory of an object with
    ``descriptor(rgb, landmarks68)``) replace the default mediapipe / dlib ones, for tests.
    """
    config = config or ConvertConfig()
    reporter = reporter or NullReporter()
    target, out = Path(target), Path(out)
    t0 = time.perf_counter()
    reader = _open_target(target)
    kind = reader.kind
    _check_paths(target, out, kind)
    loaded = load_convert_model(model, config.device)
    meta = _model_meta(loaded)
    runner = _Runner(loaded, config.reverse, config.precision, config.detail)
    # The single safety decision point: consent of both identities, content gate on the target.
    ctx = policy.begin_output(target, meta, settings=asdict(config), visible_label=config.visible_label, reporter=reporter)

    own_detector = detector is None
    det = detector if detector is not None else _make_detector(video_mode=(kind == "video"))
    fps = float(reader.fps) if kind == "video" else 0.0
    total = reader.frame_count if config.max_frames is None else min(reader.frame_count, config.max_frames)
    warnings: list[str] = [runner.detail_note] if runner.detail_note else []
    counts = {"swapped": 0, "bridged": 0, "no_face": 0, "frames": 0, "cuts": 0, "identity_checks": 0}
    phases: dict[str, float] = {}

    from facedub.fileio import atomic_path

    # Bound the frames in flight (≈ 4 queues + a batch) to about 512 MB for large frames.
    frame_bytes = max(1, reader.width * reader.height * 3)
    pipe = _Pipeline(max(2, min(config.queue_size, (512 << 20) // (5 * frame_bytes))))
    smoother = _Smoother(config, fps)
    try:
        with atomic_path(out) as tmp:
            if kind == "video":
                from facedub.media.writer import VideoWriter

                sink: Any = VideoWriter(
                    tmp,
                    reader.width,
                    reader.height,
                    reader.fps,
                    audio_from=target if reader.has_audio else None,
                    crf=config.crf,
                    preset=config.preset,
                    audio_duration=None if config.max_frames is None else config.max_frames / reader.fps,
                    metadata=ctx.writer_metadata(),
                    threads=encoder_threads(reader.width, reader.height),
                    timed=True,  # each frame keeps its input timestamp (variable frame rate, audio sync)
                )
                warnings.extend(reader.notes() + sink.notes)  # rotation, deinterlacing, padding, streams left out
            else:
                sink = _ImageSink(tmp)
            t_frames = time.perf_counter()
            phases["checks"] = round(t_frames - t0, 3)
            try:
                # OpenCV splitting each small warp / blur over the cores costs more CPU than
                # it saves wall time once every core runs a stage (≈1.4 ms a face at 512²).
                with _opencv_threads(1):
                    _run(pipe, reader, det, runner, meta, config, smoother, sink, reporter, total, counts, identity, ctx, occlusion_model(config, model))
            except BaseException:
                sink.abort()
                raise
            if counts["frames"] == 0:
                sink.abort()
                raise BadInput(f"{target}: no frames could be read")
            if counts["swapped"] == 0:
                sink.abort()
                raise BadInput(f"{target}: no face of the target person found in any of the {counts['frames']} frames")
            sink.close()
            warnings.extend(getattr(reader, "problems", []))  # frames the decoder could not read
            t_finish = time.perf_counter()
            phases["frames"] = round(t_finish - t_frames, 3)
            policy.finalize_output(tmp, ctx, final_path=out)
            phases["finish"] = round(time.perf_counter() - t_finish, 3)
    finally:
        pipe.shutdown()
        if own_detector:
            _close(det)

    if _target_descriptor(meta, config.reverse) is None:
        warnings.append(
            "the model stores no descriptor of the target person, so faces were not checked for identity: "
            "the only face in a frame (or the largest of several) was swapped, whoever it was; retrain to store one"
        )
    if counts["no_face"]:
        warnings.append(f"{counts['no_face']} of {counts['frames']} frames had no face of the target person and were copied unchanged")
    for w in warnings:
        reporter.note(w)
    seconds = time.perf_counter() - t0
    jr, js = smoother.jitter.result()
    return ConvertSummary(
        output=str(out),
        kind=kind,
        frames=counts["frames"],
        swapped=counts["swapped"],
        bridged=counts["bridged"],
        no_face=counts["no_face"],
        width=reader.width,
        height=reader.height,
        fps=fps,
        audio=bool(kind == "video" and reader.has_audio),
        seconds=seconds,
        frames_per_second=counts["frames"] / seconds if seconds > 0 else 0.0,
        jitter_raw=jr,
        jitter_smoothed=js,
        busy={k: round(v, 3) for k, v in pipe.busy.items()},
        phases=phases,
        warnings=tuple(warnings),
        precision=runner.precision,
        detail_scale=runner.out_size // runner.size,
        cuts=counts["cuts"],
        identity_checks=counts["identity_checks"],
    )


def _run(
    pipe: _Pipeline,
    reader: Any,
    det: Any,
    runner: _Runner,
    meta: dict[str, Any],
    config: ConvertConfig,
    smoother: _Smoother,
    sink: Any,
    reporter: Reporter,
    total: int,
    counts: dict[str, int],
    identity: Callable[[], Any] | None,
    ctx: policy.OutputContext,
    occ: "occ_mod.OcclusionModel | None" = None,
) -> None:
    workers, threads = model_parallelism(config, runner.device.type, available_cores())
    q_dec, q_det, q_out = pipe.queue(), pipe.queue(), pipe.queue()
    # Batches waiting for a model worker, and finished batches (in any order) for the blender.
    q_batch, q_inf = pipe.queue(workers), pipe.queue(finished_batches(workers, config.batch))
    q_done: "queue.Queue[Any]" = queue.Queue(maxsize=1024)
    chooser = _TargetChooser(_target_descriptor(meta, config.reverse), config, identity)
    cuts = None if config.cut_threshold is None or reader.kind != "video" else CutDetector(config.cut_threshold)

    def decode() -> None:
        it = iter(reader.frames(limit=config.max_frames, threads=decoder_threads(reader.width, reader.height)))
        while True:
            t = time.perf_counter()
            try:
                f = next(it)
            except StopIteration:
                break
            pipe.add_busy("decode", time.perf_counter() - t)
            pipe.put(q_dec, _Item(f.index, f.time, f.rgb))
        pipe.put(q_dec, _END)

    def detect() -> None:
        for item in pipe.items(q_dec):
            t = time.perf_counter()
            if cuts is not None and cuts.update(item.rgb):
                # A new shot: nothing tracked in the last one carries over.
                item.cut = True
                chooser.reset()
                reset = getattr(det, "reset", None)
                if callable(reset):
                    reset()
            t_det = time.perf_counter()
            faces = det.detect(item.rgb)
            t_id = time.perf_counter()
            id_before = chooser.seconds
            face = chooser.choose(item.rgb, faces)
            if face is not None:
                item.lm = np.asarray(face.landmarks68, dtype=np.float64)
            pipe.add_busy("cuts", t_det - t)
            pipe.add_busy("detect", t_id - t_det + (time.perf_counter() - t_id) - (chooser.seconds - id_before))
            pipe.add_busy("identity", chooser.seconds - id_before)
            pipe.put(q_det, item)
        counts["identity_checks"] = chooser.descriptor_calls
        pipe.put(q_det, _END)

    def batches() -> None:
        bridger = _Bridger(config.max_gap)
        pending: list[_Item] = []
        seq = 0

        def flush() -> None:
            nonlocal seq
            if pending:
                pipe.put(q_batch, (seq, list(pending)))
                seq += 1
            pending.clear()

        def prepare(items: list[_Item]) -> None:
            t = time.perf_counter()
            for it in items:
                if it.lm is None or it.cut:
                    smoother.reset()  # a dropout or a new shot: the filter starts afresh
                if it.lm is not None:
                    it.lm_s = smoother(it)
                    it.x, it.align, it.m = model_input(it.rgb, it.lm_s, runner.coverage, runner.size)
                    if occ is not None:
                        it.occ_x, it.occ_m = occ.inputs(it.rgb, it.align)
                pending.append(it)
            pipe.add_busy("align", time.perf_counter() - t)
            if sum(1 for it in pending if it.x is not None) >= config.batch or len(pending) >= 2 * config.batch:
                flush()

        for item in pipe.items(q_det):
            prepare(bridger.push(item))
        prepare(bridger.flush())
        flush()
        for _ in range(workers):
            pipe.put(q_batch, _END)

    def model_worker() -> None:
        import torch

        torch.set_num_threads(threads)  # this thread's own setting; the caller's is untouched
        for seq, items in pipe.items(q_batch):
            faces = [it for it in items if it.x is not None]
            if faces:
                t = time.perf_counter()
                for start in range(0, len(faces), config.batch):
                    chunk = faces[start : start + config.batch]
                    rgb, masks = runner(np.stack([it.x for it in chunk]))
                    for k, it in enumerate(chunk):
                        it.face = rgb[k]
                        it.face_mask = None if masks is None else masks[k]
                pipe.add_busy("model", time.perf_counter() - t)
                if occ is not None:
                    t = time.perf_counter()
                    for start in range(0, len(faces), config.batch):
                        chunk = faces[start : start + config.batch]
                        vis = occ(np.stack([it.occ_x for it in chunk]))
                        for k, it in enumerate(chunk):
                            it.visible = vis[k]
                    pipe.add_busy("occlusion", time.perf_counter() - t)
            pipe.put(q_inf, (seq, items))
        pipe.put(q_inf, _END)

    def in_order() -> Iterable[_Item]:
        """Items of the finished batches in frame order (workers may finish out of order)."""
        held: dict[int, list[_Item]] = {}
        wanted, ended = 0, 0
        while ended < workers:
            got = pipe.get(q_inf)
            if got is _END:
                ended += 1
                continue
            held[got[0]] = got[1]
            while wanted in held:
                yield from held.pop(wanted)
                wanted += 1
        if held:
            raise RuntimeError(f"convert: batches {sorted(held)} were finished but batch {wanted} never was")

    def composite() -> None:
        comp = _Compositor(config, runner.size)
        for it in in_order():
            t = time.perf_counter()
            # The plate before the paste (the watermark hides in its texture, strongest in the face).
            plate = it.rgb.copy() if it.face is not None and it.rgb.flags.writeable else it.rgb
            frame = it.rgb if it.rgb.flags.writeable else it.rgb.copy()
            if it.cut:
                comp.reset()  # colour statistics of the last shot's face do not carry over
            if it.face is not None:
                comp.paste(frame, it.face, it.face_mask, it.x, it.lm_s, it.m, it.align, it.visible, it.occ_m)
            else:
                comp.reset()
            it.out = policy.mark_frame(frame, ctx, it.lm_s if it.face is not None else None, plate)
            it.rgb = it.x = it.face = it.face_mask = it.occ_x = it.visible = None  # type: ignore[assignment]
            pipe.add_busy("blend", time.perf_counter() - t)
            pipe.put(q_out, it)
        pipe.put(q_out, _END)

    def encode() -> None:
        for it in pipe.items(q_out):
            t = time.perf_counter()
            sink.write(it.out, it.time)
            pipe.add_busy("encode", time.perf_counter() - t)
            pipe.put(q_done, (it.lm_s is not None, it.bridged, it.cut))
        pipe.put(q_done, _END)

    # The model is the costly stage: the other threads run at a lower priority so that, on a
    # busy CPU, the model's threads get the cores first and the cheap stages fill the gaps.
    nice = config.nice
    pipe.spawn("decode", decode, nice)
    pipe.spawn("detect", detect, nice)
    pipe.spawn("batch", batches, nice)
    for k in range(workers):
        pipe.spawn(f"model{k}", model_worker)
    pipe.spawn("blend", composite, nice)
    pipe.spawn("encode", encode, nice)

    reporter.start("convert", total=total or None, unit="frame")
    t_start = time.perf_counter()
    try:
        for swapped, bridged, cut in pipe.items(q_done):
            counts["frames"] += 1
            counts["cuts"] += int(cut)
            if swapped:
                counts["swapped"] += 1
                counts["bridged"] += int(bridged)
            else:
                counts["no_face"] += 1
            elapsed = time.perf_counter() - t_start
            reporter.advance(1, fps=counts["frames"] / elapsed if elapsed > 0 else 0.0)
            if reporter.should_stop():
                raise Cancelled("convert stopped by the user; no output written")
    except _Stopped:
        pass
    finally:
        reporter.finish()
        pipe.shutdown()
    pipe.raise_error()


# ---------------------------------------------------------------------------------------
# Preview: one frame, before | after
# ---------------------------------------------------------------------------------------
def read_frame_at(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video, decoding only from the keyframe before it (seek)."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise BadInput(f"{path}: cannot open video ({str(e).splitlines()[0]})") from None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 25
        tb = stream.time_base
        start = stream.start_time or 0
        if index > 0 and tb is not None:
            # Seek to the keyframe at or before a point one second before the frame.
            target_pts = start + int(max(index / float(rate) - 1.0, 0.0) / float(tb))
            container.seek(target_pts, stream=stream, backward=True, any_frame=False)
        count = -1
        last = None
        for frame in container.decode(stream):
            if frame.pts is not None and tb is not None:
                i = int(round(float((frame.pts - start) * tb) * float(rate)))
            else:
                count += 1
                i = count
            if i >= index:
                return frame.to_ndarray(format="rgb24")
            last = i
    except av.error.FFmpegError as e:
        raise BadInput(f"{path}: cannot decode frame {index} ({str(e).splitlines()[0]})") from None
    finally:
        container.close()
    raise BadInput(f"{path}: frame {index} is past the end of the video (last frame {last})")


def convert_frame(
    rgb: np.ndarray,
    model: Any,
    config: ConvertConfig | None = None,
    *,
    detector: _Detector | None = None,
    identity: Callable[[], Any] | None = None,
) -> tuple[np.ndarray, bool]:
    """Swap the target face of one frame (no temporal smoothing). Returns (frame, face found)."""
    out, found, _ = _swap_frame(rgb, model, config, detector=detector, identity=identity)
    return out, found


def _swap_frame(
    rgb: np.ndarray,
    model: Any,
    config: ConvertConfig | None = None,
    *,
    detector: _Detector | None = None,
    identity: Callable[[], Any] | None = None,
) -> tuple[np.ndarray, bool, tuple[blend_mod.Region, np.ndarray, np.ndarray | None] | None]:
    """:func:`convert_frame`, plus the paste mask it used ((ROI, mask, hidden face) or ``None``)."""
    config = config or ConvertConfig()
    occ = occlusion_model(config, model)
    loaded = load_convert_model(model, config.device)
    runner = _Runner(loaded, config.reverse, config.precision, config.detail)
    det = detector if detector is not None else _make_detector(video_mode=False)
    try:
        faces = det.detect(rgb)
    finally:
        if detector is None:
            _close(det)
    face = _TargetChooser(_target_descriptor(_model_meta(loaded), config.reverse), config, identity).choose(rgb, faces)
    out = rgb.copy()
    if face is None:
        return out, False, None
    lm = np.asarray(face.landmarks68, dtype=np.float64)
    x, a, m = model_input(rgb, lm, runner.coverage, runner.size)
    face_rgb, masks = runner(x[None])
    visible, to_seg = None, None
    if occ is not None:
        occ_x, to_seg = occ.inputs(rgb, a)
        visible = occ(occ_x)
    comp = _Compositor(config, runner.size)
    comp.record = True
    comp.paste(out, face_rgb[0], None if masks is None else masks[0], x, lm, m, a, visible, to_seg)
    return out, True, comp.last_mask


def convert_preview(
    target: str | os.PathLike[str],
    model: Any,
    frame: int,
    out_png: str | os.PathLike[str],
    config: ConvertConfig | None = None,
    reporter: Reporter | None = None,
    *,
    detector: _Detector | None = None,
    identity: Callable[[], Any] | None = None,
) -> PreviewResult:
    """Write one before | after | mask PNG of frame ``frame`` of ``target`` (seeks; no full decode).

    The mask panel shows where the new face is pasted (green) and, with occlusion on, the
    parts of the face found hidden behind something and left alone (red)."""
    config = config or ConvertConfig()
    reporter = reporter or NullReporter()
    t0 = time.perf_counter()
    target, out_png = Path(target), Path(out_png)
    reader = _open_target(target)
    if out_png.suffix.lower() != ".png":
        raise BadInput(f"{out_png}: the preview is a PNG; name it .png")
    _check_paths(target, out_png, "image")
    if frame < 0:
        raise BadInput(f"{target}: frame must be 0 or more, got {frame}")
    if reader.kind == "image":
        if frame != 0:
            raise BadInput(f"{target}: is a single image; the only frame is 0")
        from facedub.media.reader import load_image

        before = load_image(target)
    else:
        before = read_frame_at(target, frame)
        if not reader.orientation.identity:  # as players show it (a phone's rotation), as convert reads it
            before = np.ascontiguousarray(reader.orientation.apply(before))
    loaded = load_convert_model(model, config.device)
    meta = _model_meta(loaded)
    ctx = policy.begin_output(target, meta, settings=asdict(config), visible_label=config.visible_label, reporter=reporter, preview=(before, frame))
    after, found, pasted = _swap_frame(before, loaded, config, detector=detector, identity=identity)
    if not found:
        reporter.note(f"{target}: no face of the target person in frame {frame}; the preview shows it unchanged")
    from facedub.fileio import atomic_path

    with atomic_path(out_png, ".png") as tmp:
        from PIL import Image

        pair = policy.mark_frame(np.concatenate([before, after, blend_mod.mask_overlay(before, pasted)], axis=1), ctx)
        Image.fromarray(pair).save(tmp, format="PNG", compress_level=1)
        policy.finalize_output(tmp, ctx, final_path=out_png)
    reporter.image(str(out_png), f"preview of frame {frame} (before | after | mask)")
    return PreviewResult(str(out_png), frame, found, time.perf_counter() - t0)
