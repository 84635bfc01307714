"""Settings of the convert stage: one frozen dataclass, choice sets as ``Literal`` types.

The CLI and the web UI derive their choices from the ``Literal`` types with
``typing.get_args``, so a new choice is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from facedub.errors import BadInput
from facedub.model.names import PRECISIONS, Precision

# Which mask decides where the swapped face replaces the frame:
#   learned-hull  the model's learned mask (when it has one) intersected with the 68-landmark hull
#   hull          the landmark convex hull only
#   learned       the model's learned mask only (falls back to the hull when the model has none)
#   square        the whole model square (feathered); mostly for debugging
MaskMode = Literal["learned-hull", "hull", "learned", "square"]
# Colour transfer of the swapped face to the frame, computed inside the mask.
ColorMode = Literal["reinhard", "hist", "none"]
# How the face is pasted: feathered alpha, or Poisson (OpenCV seamlessClone) then feathered alpha.
BlendMode = Literal["alpha", "poisson"]
# Temporal smoothing of the landmarks (alignment) from frame to frame.
SmoothMode = Literal["one-euro", "none"]
# What is in front of the face (a hand, a microphone, glasses) stays in front:
#   auto  a small segmentation network finds the visible face (the model folder's own
#         occlusion.safetensors if it has one, else the generic one shipped with facedub)
#   off   the face is pasted through the mask alone
OcclusionMode = Literal["auto", "off"]
# The per-identity detail stage (facedub.convert.detail, trained by 'facedub detail'):
#   auto  used when the model folder has one trained for its current weights
#   off   the decoder's face is scaled up as it is
DetailMode = Literal["auto", "off"]

# x264 speed presets, fastest first: faster ones make bigger files at the same CRF.
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]

# The video codec of a video --out: H.264 (8-bit 4:2:0, MP4/MOV), ProRes 4444 (10-bit 4:4:4,
# MOV), the master a compositor takes, or FFV1 (lossless RGB, 16-bit from a sequence, in a
# Matroska .mkv, which has no C2PA binding: the manifest's sha256 stands in); from a 16-bit or
# float sequence no 8-bit step.
Codec = Literal["h264", "prores4444", "ffv1"]

MASK_MODES: tuple[str, ...] = get_args(MaskMode)
CODECS: tuple[str, ...] = get_args(Codec)
PRESETS: tuple[str, ...] = get_args(Preset)
COLOR_MODES: tuple[str, ...] = get_args(ColorMode)
BLEND_MODES: tuple[str, ...] = get_args(BlendMode)
SMOOTH_MODES: tuple[str, ...] = get_args(SmoothMode)
DETAIL_MODES: tuple[str, ...] = get_args(DetailMode)
OCCLUSION_MODES: tuple[str, ...] = get_args(OcclusionMode)


@dataclass(frozen=True)
class ConvertConfig:
    mask: MaskMode = "learned-hull"  # which mask to paste through (see MaskMode)
    erode: int | None = None  # shrink the mask by this many frame pixels; None = 1.5 % of the face size
    feather: int | None = None  # soften the mask edge over this many frame pixels; None = 5 % of the face size
    forehead: float = 0.1  # the landmark hull reaches this share of the chin-to-brow distance above the brows (0: the brows)
    occlusion: OcclusionMode = "off"  # keep what is in front of the face in front (see OcclusionMode); off by default until the shipped network generalises: on held-out faces with hard shadows or darker skin and a moustache it marked 18–37 % of a clear face hidden, which would stay unswapped
    detail: DetailMode = "auto"  # sharper, larger face from the model's detail stage when it has one (see DetailMode)
    sharpen: float = 0.0  # unsharp mask on the model's output before it is scaled up (0 = off; 0.5–1 for soft low-resolution models)
    color: ColorMode = "reinhard"  # colour transfer inside the mask (see ColorMode)
    color_smoothing: float = 0.5  # 0 = per-frame colour statistics; →1 = averaged over more frames (less flicker)
    blend: BlendMode = "alpha"  # paste method (see BlendMode)
    smooth: SmoothMode = "one-euro"  # temporal landmark smoothing (see SmoothMode)
    min_cutoff: float = 1.0  # one-euro: cutoff (Hz) when the face is still; lower = smoother, more lag
    beta: float = 8.0  # one-euro: cutoff increase (Hz) per face width per second of motion; higher = less lag
    max_gap: int = 5  # bridge face dropouts of up to this many frames by interpolating the landmarks
    identity_every: int = 25  # re-check every face track against the target's descriptor every N frames (also at once when first seen, after a cut, or when the track jumps or changes look)
    max_distance: float = 0.4  # descriptor distance (to the target faceset's mean) above which a face is not the target person; measured: the same person 0.15-0.22 (small, rolled, dark, bright, tinted), two AI-generated people 0.48-0.58, so dlib's own 0.6 would swap them both
    cut_threshold: float | None = 0.03  # shot-cut change score (0-1, see facedub.convert.cuts) from which a frame starts a new shot; None = no cut detection
    batch: int = 16  # faces per model call (on 2 CPU cores `original` converts 12–14 % faster at 16 than at 8)
    device: str | None = None  # torch device for the model; None = CUDA when available, else CPU
    precision: Precision = "auto"  # the model's arithmetic: auto = bfloat16 where the CPU/GPU has fast units (original 1.4× faster on such a CPU; faces within about a level of fp32), else fp32
    workers: int | None = None  # model workers running batches side by side; None = 2 on a CPU with 2+ cores, 1 on a GPU
    threads: int | None = None  # torch CPU threads of each model worker; None = the cores shared out among the workers
    crf: int = 15  # H.264 quality (lower = better, bigger); 15: the plate outside the face ≈1 dB closer to the input than 18, files ≈1.4× the size (BENCHMARKS "safety")
    preset: Preset = "veryfast"  # x264 speed preset (see Preset)
    codec: Codec = "h264"  # a video output's codec (see Codec); prores4444 needs a .mov, ffv1 a .mkv
    c2pa_frames: bool = False  # an image-sequence output: sign every PNG/TIFF frame with C2PA (about 0.1-0.2 s a 1080p frame; signed frames differ run to run, so chunks are no longer bit-identical)
    max_frames: int | None = None  # a video: stop after this many frames (tests, quick looks); None = all
    frame_range: tuple[int, int] | None = None  # an image sequence: convert frames FIRST..LAST (inclusive, the files' own numbers); None = all
    fps: float = 24.0  # an image sequence's frame rate (its files carry none): the smoothing's time scale and a video output's rate
    plate_space: str | None = None  # an image sequence's OpenColorIO colour space; None = by format (EXR: Linear Rec.709, PNG/TIFF: sRGB)
    queue_size: int = 16  # frames buffered between pipeline stages
    reverse: bool = False  # swap the other way: the model's target identity into footage of its source person
    visible_label: bool = True  # the visible "AI-generated" corner label; the invisible watermark, tags and manifest always stay
    nice: int = 10  # lower priority of the non-model threads (Linux), so the model gets the cores first; 0 = off

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("mask", self.mask, MASK_MODES),
            ("color", self.color, COLOR_MODES),
            ("blend", self.blend, BLEND_MODES),
            ("smooth", self.smooth, SMOOTH_MODES),
            ("occlusion", self.occlusion, OCCLUSION_MODES),
            ("detail", self.detail, DETAIL_MODES),
            ("preset", self.preset, PRESETS),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in allowed:
                raise BadInput(f"convert: {name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.codec not in CODECS:
            raise BadInput(f"convert: codec must be one of {', '.join(CODECS)}, got {self.codec!r}")
        for name in ("erode", "feather"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise BadInput(f"convert: {name} must be 0 or more pixels, got {v}")
        if not 0.0 <= self.forehead <= 1.0:
            raise BadInput(f"convert: forehead must be between 0 and 1, got {self.forehead}")
        if not 0.0 <= self.sharpen <= 3.0:
            raise BadInput(f"convert: sharpen must be between 0 and 3, got {self.sharpen}")
        if self.workers is not None and self.workers < 1:
            raise BadInput(f"convert: workers must be at least 1, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"convert: threads must be at least 1, got {self.threads}")
        if self.batch < 1:
            raise BadInput(f"convert: batch must be at least 1, got {self.batch}")
        if self.max_gap < 0:
            raise BadInput(f"convert: max_gap must be 0 or more, got {self.max_gap}")
        if self.max_frames is not None and self.max_frames < 1:
            raise BadInput(f"convert: frames must be at least 1, got {self.max_frames}")
        if self.frame_range is not None and not (0 <= self.frame_range[0] <= self.frame_range[1]):
            raise BadInput(f"convert: frames must be FIRST-LAST with FIRST <= LAST, got {self.frame_range}")
        if not 0.0 < self.fps <= 1000.0:
            raise BadInput(f"convert: fps must be in (0, 1000], got {self.fps}")
        if not 0 <= self.crf <= 51:
            raise BadInput(f"convert: crf must be between 0 and 51, got {self.crf}")
        if not 0.0 <= self.color_smoothing < 1.0:
            raise BadInput(f"convert: color_smoothing must be in [0, 1), got {self.color_smoothing}")
        if self.min_cutoff <= 0 or self.beta < 0:
            raise BadInput("convert: min_cutoff must be > 0 and beta >= 0")
        if not 0 <= self.nice <= 19:
            raise BadInput(f"convert: nice must be between 0 and 19, got {self.nice}")
        if self.identity_every < 1:
            raise BadInput(f"convert: identity_every must be at least 1 frame, got {self.identity_every}")
        if not 0.0 < self.max_distance <= 2.0:
            raise BadInput(f"convert: max_distance must be in (0, 2], got {self.max_distance}")
        if self.cut_threshold is not None and not 0.0 < self.cut_threshold <= 1.0:
            raise BadInput(f"convert: cut threshold must be in (0, 1] (or off), got {self.cut_threshold}")
        if self.queue_size < 2:
            raise BadInput(f"convert: queue_size must be at least 2, got {self.queue_size}")

    def with_(self, **changes: Any) -> "ConvertConfig":
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
