"""Frames from a video file (anything FFmpeg decodes, via PyAV), one image, or a folder of images.

``open_media(path)`` returns a :class:`MediaReader`; iterate it (or call ``frames(start,
every, limit)``) to get :class:`Frame` objects holding RGB uint8 arrays. Every problem with
an input becomes a one-line :class:`facedub.errors.BadInput` naming the file.

Images are normalised to 8-bit RGB: transparency (RGBA, LA, palette with alpha) is composited
on white, 16-bit and float images are rescaled, EXIF rotation is applied.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from facedub.errors import BadInput

MediaKind = Literal["video", "image", "folder"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

# Smallest image side we accept: nothing smaller can hold a face worth aligning.
MIN_IMAGE_SIDE = 16


@dataclass(frozen=True)
class Frame:
    index: int  # frame number in decode order (0-based); image number within a folder
    time: float  # seconds from the start
    rgb: np.ndarray  # H×W×3 uint8


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Load any still image PIL reads as H×W×3 uint8 RGB. BadInput on failure."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise BadInput(f"{p}: no such file")
    if not p.is_file():
        raise BadInput(f"{p}: not a file")
    try:
        with Image.open(p) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb8(im)
    except UnidentifiedImageError:
        raise BadInput(f"{p}: not a readable image") from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated / corrupt files
        raise BadInput(f"{p}: cannot read image ({_first_line(e)})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_IMAGE_SIDE:
        raise BadInput(f"{p}: image is only {w}x{h} px, too small to hold a face")
    return rgb


def _to_rgb8(im) -> np.ndarray:  # noqa: ANN001 - PIL.Image
    from PIL import Image

    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        if mode == "F":
            hi = max(float(a.max()), 1e-12) if a.max() > 1.0 else 1.0
        grey = np.clip(np.round(a / hi * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def _probe_image(p: Path) -> tuple[int, int]:
    """Size of an image from its header (the pixels are decoded later, when needed)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            w, h = im.size
    except UnidentifiedImageError:
        raise BadInput(f"{p}: not a readable image") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise BadInput(f"{p}: cannot read image ({_first_line(e)})") from None
    if min(w, h) < MIN_IMAGE_SIDE:
        raise BadInput(f"{p}: image is only {w}x{h} px, too small to hold a face")
    return w, h


def expand_inputs(inputs: list[str | os.PathLike[str]]) -> list[Path]:
    """Input paths → media files: folders become their images (sorted). BadInput when missing/empty."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise BadInput(f"{p}: no such file or folder")
        if p.is_dir():
            images = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
            if not images:
                raise BadInput(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            out.extend(images)
        else:
            out.append(p)
    return out


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


class MediaReader:
    """Frames of one video, one image or a folder of images.

    Attributes: ``path``, ``kind``, ``fps``, ``frame_count`` (estimated for some videos),
    ``width``, ``height``, ``has_audio``.
    """

    def __init__(
        self,
        path: Path,
        kind: MediaKind,
        fps: float,
        frame_count: int,
        width: int,
        height: int,
        has_audio: bool,
        images: list[Path] | None = None,
        count_exact: bool = False,
    ) -> None:
        self.path = path
        self.count_exact = count_exact  # frame_count comes from the container header, not an estimate
        self.kind = kind
        self.fps = fps
        self.frame_count = frame_count
        self.width = width
        self.height = height
        self.has_audio = has_audio
        self._images = images or []

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, start: int = 0, every: int = 1, limit: int | None = None, threads: int | None = None) -> Iterator[Frame]:
        """Frames with ``index >= start`` and ``index % every == 0``; at most ``limit`` of them.

        ``threads``: video decoder threads. ``None`` lets FFmpeg choose (frame and slice
        threads: decoding overlaps the caller's work); 1 decodes on the calling thread only,
        which costs less CPU per frame (no hand-over between threads) — for callers whose
        other threads already keep every core busy.
        Raises BadInput (after yielding what it could) when a video turns out truncated or
        corrupt part-way.
        """
        if every < 1:
            raise ValueError("every must be >= 1")
        if threads is not None and threads < 1:
            raise ValueError("threads must be None or >= 1")
        if self.kind == "video":
            yield from self._video_frames(start, every, limit, threads)
            return
        n = 0
        for i, img in enumerate(self._images):
            if i < start or i % every:
                continue
            if limit is not None and n >= limit:
                return
            yield Frame(i, 0.0, load_image(img))
            n += 1

    def _video_frames(self, start: int, every: int, limit: int | None, threads: int | None) -> Iterator[Frame]:
        import av

        n = 0
        index = -1
        limited = False
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise BadInput(f"{self.path}: cannot open video ({_first_line(e)})") from None
        try:
            stream = container.streams.video[0]
            if threads is None:
                stream.thread_type = "AUTO"  # frame + slice threads: decode overlaps our work
            else:
                stream.thread_count = int(threads)
            fps = self.fps
            decode = container.decode(stream)
            while True:
                try:
                    frame = next(decode)
                except StopIteration:
                    break
                except (av.error.FFmpegError, OSError, ValueError) as e:
                    where = f"after frame {index}" if index >= 0 else "before the first frame"
                    raise BadInput(f"{self.path}: video is truncated or corrupt, decoding stopped {where} ({_first_line(e)})") from None
                index += 1
                if index < start or index % every:
                    continue
                if limit is not None and n >= limit:
                    limited = True
                    break
                t = float(frame.time) if frame.time is not None else index / fps
                yield Frame(index, t, frame.to_ndarray(format="rgb24"))
                n += 1
        finally:
            container.close()
        if index < 0:
            raise BadInput(f"{self.path}: video holds no decodable frames (truncated or corrupt)")
        if not limited and self.count_exact and index + 1 < 0.98 * self.frame_count - 1:
            raise BadInput(f"{self.path}: video is truncated: it ends after {index + 1} of the {self.frame_count} frames its header announces")


def open_media(path: str | os.PathLike[str]) -> MediaReader:
    """Open a video, an image, or a folder of images. BadInput for anything unreadable."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{p}: no such file or folder")
    if p.is_dir():
        images = expand_inputs([p])
        w, h = _probe_image(images[0])
        return MediaReader(p, "folder", 0.0, len(images), w, h, False, images)
    if not os.access(p, os.R_OK):
        raise BadInput(f"{p}: permission denied")
    if p.stat().st_size == 0:
        raise BadInput(f"{p}: file is empty")
    if is_image_path(p):
        w, h = _probe_image(p)
        return MediaReader(p, "image", 0.0, 1, w, h, False, [p])
    return _open_video(p)


def _open_video(p: Path) -> MediaReader:
    import av

    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        # Maybe a still image with an unusual extension.
        try:
            rgb = load_image(p)
        except BadInput:
            why = "corrupt, truncated, or not a video or image file"
            if isinstance(e, av.error.FFmpegError) and getattr(e, "strerror", None):
                why = f"{e.strerror.lower()}: corrupt, truncated, or not a video or image file"
            raise BadInput(f"{p}: cannot read it as a video or image ({why})") from None
        h, w = rgb.shape[:2]
        return MediaReader(p, "image", 0.0, 1, w, h, False, [p])
    try:
        if not container.streams.video:
            raise BadInput(f"{p}: holds no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 25.0
        if not math.isfinite(fps) or fps <= 0:
            fps = 25.0
        count = int(stream.frames or 0)
        exact = count > 0
        if count <= 0:
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            else:
                seconds = 0.0
            count = int(round(seconds * fps))
        w, h = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if w <= 0 or h <= 0:
            raise BadInput(f"{p}: video stream has no picture size (corrupt header)")
        if min(w, h) < MIN_IMAGE_SIDE:
            raise BadInput(f"{p}: video is only {w}x{h} px, too small to hold a face")
        has_audio = bool(container.streams.audio)
    finally:
        container.close()
    return MediaReader(p, "video", fps, count, w, h, has_audio, count_exact=exact)
