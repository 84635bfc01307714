"""Settings of the extract stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# Why a detected face did not make it into the faceset.
RejectReason = Literal["too_small", "low_score", "blurry", "other_person", "removed_by_hand", "already_present"]

LANDMARK_METHOD = "mediapipe-mesh-68-v1"  # see facedub.faces.detect.MESH_TO_68


@dataclass(frozen=True)
class ExtractConfig:
    every: int = 1  # keep every Nth frame of a video (1 = all); near-duplicate frames add little
    min_size: int = 40  # px: drop faces whose box (shorter side, in the frame) is smaller
    # Blur filter. None (default): relative — a face goes when its sharpness, measured at the
    # size models train at, is far below the faceset's own (see extract.filters.blur_limit), so
    # low-resolution footage keeps its good faces. A number: absolute — drop crops whose
    # sharpness (variance of the Laplacian of the 256 px crop, as faceset.json records) is lower; 0 = off.
    blur_threshold: float | None = None
    blur_mads: float = 3.0  # relative: blurry = more than this many robust sigmas below the median (log scale) ...
    blur_ratio: float = 4.0  # ... and under median / this
    min_score: float = 0.5  # detector confidence below which a face is ignored
    max_faces: int = 4  # faces looked for per frame
    reference: str | None = None  # image of the person to keep; None = keep the largest identity
    match_distance: float = 0.5  # descriptor distance below which two faces are one person (dlib says 0.6; see faces.identity)
    consent: str | None = None  # consent record JSON to bind to the faceset
    descriptor_every: int = 100  # identity descriptor (~100 ms) on the first face of each track, then every Nth
    detect_every: int = 5  # video: re-run the detector (scores, new faces) every N frames; the mesh tracks between
    max_frames: int | None = None  # stop each source after this many sampled frames (previews, tests); resumable
    checkpoint_seconds: float = 15.0  # rewrite faceset.json this often during long videos (stretched so rewrites stay < 5 % of the time); 0 = every frame
    writers: int = 2  # threads encoding PNG crops
    png_compress: int = 1  # zlib level of the crops (1 = fast, Paeth filter + Huffman only; 0 = stored, ~2× the disk; 9 = small)

    def __post_init__(self) -> None:
        from facedub.errors import BadInput

        if self.every < 1:
            raise BadInput(f"--every must be at least 1, got {self.every}")
        if self.min_size < 0:
            raise BadInput(f"--min-size must be >= 0, got {self.min_size}")
        if self.blur_threshold is not None and not self.blur_threshold >= 0:
            raise BadInput(f"--blur-threshold must be >= 0, got {self.blur_threshold}")
        if not self.blur_mads > 0 or not self.blur_ratio >= 1:
            raise BadInput(f"blur_mads must be > 0 and blur_ratio >= 1, got {self.blur_mads} and {self.blur_ratio}")
        if not 0.0 < self.match_distance < 2.0:
            raise BadInput(f"--match-distance must be in (0, 2), got {self.match_distance}")
        if not 0.0 <= self.min_score <= 1.0:
            raise BadInput(f"min_score must be in [0, 1], got {self.min_score}")
        if self.max_faces < 1 or self.descriptor_every < 1 or self.detect_every < 1 or self.writers < 1:
            raise BadInput("max_faces, descriptor_every, detect_every and writers must be at least 1")
        if self.checkpoint_seconds < 0:
            raise BadInput(f"checkpoint_seconds must be >= 0, got {self.checkpoint_seconds}")
        if self.max_frames is not None and self.max_frames < 1:
            raise BadInput(f"max_frames must be at least 1, got {self.max_frames}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
