"""Frames from a video file (anything FFmpeg decodes, via PyAV), one image, or a folder of images.

``open_media(path)`` returns a :class:`MediaReader`; iterate it (or call ``frames(start,
every, limit)``) to get :class:`Frame` objects holding RGB uint8 arrays. Every problem with
an input becomes a one-line :class:`facedub.errors.BadInput` naming the file.

Images are normalised to 8-bit RGB: transparency (RGBA, LA, palette with alpha) is composited
on white, 16-bit and float images are rescaled, EXIF rotation is applied.

Videos as cameras and phones make them:

- a rotation (or mirror) in the metadata (display matrix, e.g. a phone held upright) is
  applied, so frames come out upright as players show them, and ``width``/``height`` are the
  displayed size;
- every frame keeps its own timestamp (``Frame.time``), so variable frame rate survives;
- any pixel format FFmpeg decodes (10-bit, 4:2:2, 4:4:4 …) is converted to 8-bit RGB;
- interlaced video (frames flagged interlaced by the decoder) is deinterlaced with FFmpeg's
  ``bwdif`` filter, one output frame per input frame, field order taken from the stream;
- a packet the decoder rejects (corrupt data mid-file) is skipped and decoding goes on;
  what was skipped is listed in ``MediaReader.problems`` for the caller's summary.

For convert: :func:`open_single` (one video or one image), :func:`read_frame_at` (one frame by
seeking to the keyframe before it, for previews), :meth:`MediaReader.frames_between` (a range
of frames by index from a seek, each frame found by its timestamp: a render farm's chunk) and
:func:`decoder_threads`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from fractions import Fraction
from typing import Any, Iterator, Literal

import numpy as np

from facedub.errors import BadInput

MediaKind = Literal["video", "image", "folder"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})

# Smallest image side we accept: nothing smaller can hold a face worth aligning.
MIN_IMAGE_SIDE = 16


# FFmpeg's colour-matrix and range codes (AVColorSpace, AVColorRange) read as BT.601, limited range.
_BT601_MATRICES = (2, 5, 6)  # unspecified, BT.470BG, SMPTE 170M
_LIMITED_RANGES = (0, 1)  # unspecified, MPEG


def frame_rgb(frame: Any) -> np.ndarray:
    """A decoded video frame as 8-bit RGB.

    The common case (8-bit 4:2:0, BT.601 or untagged matrix, limited range: what facedub's
    writer produces and most SD/web files carry) is converted exactly by OpenCV, the inverse
    of the writer's own conversion. PyAV's default libswscale path comes out 1–1.5 levels low
    on every channel (measured on the shared 512² clips against a float BT.601 reference:
    −0.98 / −1.49 / −0.96 mean; OpenCV −0.03), so each pass through facedub darkened the plate
    by a level; it is also about 2.5× slower at 512². Everything else (10-bit, 4:2:2, BT.709,
    full range, odd sizes) goes through libswscale.
    """
    if (
        frame.format.name == "yuv420p"
        and frame.width % 2 == 0
        and frame.height % 2 == 0
        and getattr(frame, "colorspace", 2) in _BT601_MATRICES
        and getattr(frame, "color_range", 0) in _LIMITED_RANGES
    ):
        import cv2

        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


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


# ---------------------------------------------------------------------------------------
# Orientation (display matrix) and field order: pure helpers
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Orientation:
    """How stored frames map to what players show: optional transpose, then flips.

    Built from FFmpeg's display matrix: a point (x, y) of the stored frame is shown at
    (a·x + c·y, b·x + d·y), with a, b, c, d each -1, 0 or 1 for the eight right-angle cases.
    """

    transpose: bool = False  # rows become columns (a quarter turn, with the flips below)
    flip_x: bool = False  # then mirror left-right
    flip_y: bool = False  # then mirror top-bottom

    @property
    def identity(self) -> bool:
        return not (self.transpose or self.flip_x or self.flip_y)

    def apply(self, img: np.ndarray) -> np.ndarray:
        """The frame as players show it (a view; copy it if you need contiguous memory)."""
        out = img.swapaxes(0, 1) if self.transpose else img
        if self.flip_x:
            out = out[:, ::-1]
        if self.flip_y:
            out = out[::-1]
        return out

    def shown_size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.transpose else (width, height)

    def describe(self) -> str:
        """Plain words: 'rotated 90° clockwise', 'mirrored left-right', …"""
        turns = {  # (transpose, flip_x, flip_y) → words
            (False, False, False): "upright",
            (True, True, False): "rotated 90° clockwise",
            (True, False, True): "rotated 90° counter-clockwise",
            (False, True, True): "rotated 180°",
            (False, True, False): "mirrored left-right",
            (False, False, True): "mirrored top-bottom",
            (True, False, False): "transposed (mirrored across the diagonal)",
            (True, True, True): "transposed across the other diagonal",
        }
        return turns[(self.transpose, self.flip_x, self.flip_y)]


def orientation_from_matrix(matrix: tuple[int, ...] | list[int] | None) -> Orientation:
    """:class:`Orientation` of an FFmpeg display matrix (9 ints, 16.16 fixed point).

    Angles other than right angles are rounded to the nearest right angle (players differ on
    them too). ``None`` or a degenerate matrix: upright.
    """
    if matrix is None or len(matrix) < 5:
        return Orientation()
    a, b, c, d = (float(matrix[i]) / 65536.0 for i in (0, 1, 3, 4))
    if abs(a) + abs(d) >= abs(b) + abs(c):  # no transpose: x' = a·x, y' = d·y
        if a == 0 and d == 0:
            return Orientation()
        return Orientation(False, a < 0, d < 0)
    # transpose: x' = c·y, y' = b·x → out = img.T, then flips by the signs of c and b
    return Orientation(True, c < 0, b < 0)


FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "top field first", 3: "bottom field first", 4: "top field first", 5: "bottom field first"}


def _display_matrix(frame: Any) -> tuple[int, ...] | None:
    import struct

    for sd in getattr(frame, "side_data", ()) or ():
        if getattr(getattr(sd, "type", None), "name", "") == "DISPLAYMATRIX":
            raw = bytes(sd)
            if len(raw) >= 36:
                return struct.unpack("<9i", raw[:36])
    return None


class MediaReader:
    """Frames of one video, one image or a folder of images.

    Attributes: ``path``, ``kind``, ``fps``, ``frame_count`` (estimated for some videos),
    ``width``, ``height`` (as shown: after the rotation in the metadata), ``has_audio``,
    ``orientation`` (what is done to stored frames to show them upright), ``interlaced`` and
    ``field_order`` (deinterlaced on reading), ``pix_fmt`` (the stored pixel format),
    ``time_base`` (of the video stream's timestamps), ``problems`` (one line per frame that
    could not be decoded, filled while reading) and :meth:`notes` (what reading did).
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
        *,
        orientation: Orientation = Orientation(),
        interlaced: bool = False,
        field_order: str = "unknown",
        pix_fmt: str = "",
        time_base: Fraction | None = None,
        stored_size: tuple[int, int] | None = None,
    ) -> None:
        self.path = path
        self.count_exact = count_exact  # frame_count comes from the container header, not an estimate
        self.kind = kind
        self.fps = fps
        self.frame_count = frame_count
        self.width = width
        self.height = height
        self.has_audio = has_audio
        self.orientation = orientation
        self.interlaced = interlaced
        self.field_order = field_order
        self.pix_fmt = pix_fmt
        self.time_base = time_base
        self.stored_size = stored_size or (width, height)
        self.problems: list[str] = []  # filled while reading: frames skipped as undecodable
        self._images = images or []
        self._pts: list[int] | None = None  # frame_pts(), read on first use

    def notes(self) -> list[str]:
        """What reading does to this input that a user may want to know (one line each)."""
        out = []
        if not self.orientation.identity:
            w, h = self.stored_size
            out.append(f"{self.path}: {self.orientation.describe()} as its metadata says ({w}x{h} stored, {self.width}x{self.height} shown); frames are processed and written upright")
        if self.interlaced:
            out.append(f"{self.path}: interlaced ({self.field_order}); deinterlaced with bwdif, one frame per frame")
        return out

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, start: int = 0, every: int = 1, limit: int | None = None, threads: int | None = None) -> Iterator[Frame]:
        """Frames with ``index >= start`` and ``index % every == 0``; at most ``limit`` of them.

        ``threads``: video decoder threads. ``None`` lets FFmpeg choose (frame and slice
        threads: decoding overlaps the caller's work); 1 decodes on the calling thread only,
        which costs less CPU per frame (no hand-over between threads) — for callers whose
        other threads already keep every core busy.
        A packet the decoder rejects is skipped (listed in ``problems``); raises BadInput
        (after yielding what it could) when a video turns out truncated, or so corrupt that
        nothing more decodes.
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

    def frame_pts(self) -> list[int]:
        """Presentation timestamps of the video's frames, sorted: the PTS of every video packet
        (demuxed, not decoded), so frame ``i`` is the one whose PTS is ``frame_pts()[i]``
        whatever the B-frame reordering, the start PTS or the frame rate. Read once."""
        if self._pts is None:
            import av

            try:
                with av.open(str(self.path)) as container:
                    stream = container.streams.video[0]
                    self._pts = sorted(int(p.pts) for p in container.demux(stream) if p.pts is not None and p.size)
            except (av.error.FFmpegError, OSError, ValueError) as e:
                raise BadInput(f"{self.path}: cannot read the video's timestamps ({_first_line(e)})") from None
        return self._pts

    def frames_between(self, first: int, last: int | None = None, threads: int | None = None) -> Iterator[Frame]:
        """Video frames ``first``..``last`` (inclusive, indices from 0; ``None``: to the end),
        decoding only from the keyframe at or before ``first`` (a seek).

        Each decoded frame's index is its PTS's place in :meth:`frame_pts`, so the first frame
        yielded is exactly frame ``first`` (B-frames, a non-zero start PTS and variable frame
        rates included). When a seek lands after ``first`` (a demuxer seeking by decode
        time), it is retried from further back, and finally from the start.
        """
        import av
        from bisect import bisect_left

        pts = self.frame_pts()
        if not pts or first < 0 or first >= len(pts):
            raise BadInput(f"{self.path}: frame {first} asked, the video holds frames 0-{len(pts) - 1}")
        last = len(pts) - 1 if last is None else min(last, len(pts) - 1)
        back = 0
        while True:
            seek_to = max(0, first - back)
            try:
                container = av.open(str(self.path))
            except (av.error.FFmpegError, OSError) as e:
                raise BadInput(f"{self.path}: cannot open video ({_first_line(e)})") from None
            decoder = _Decoder(self, container, threads)
            if seek_to > 0:
                container.seek(pts[seek_to], stream=decoder.stream, backward=True, any_frame=False)
            started = False
            retry = False
            index = -1
            try:
                for frame in decoder.frames():
                    if frame.pts is not None:
                        k = bisect_left(pts, int(frame.pts))
                        index = k if k < len(pts) and pts[k] == int(frame.pts) else index + 1
                    else:
                        index += 1
                    if not started:
                        started = True
                        if index > first and seek_to > 0:
                            retry = True
                            break
                    if index < first:
                        continue
                    if index > last:
                        break
                    t = float(frame.time) if frame.time is not None else index / (self.fps or 25.0)
                    rgb = frame_rgb(frame)
                    if not self.orientation.identity:
                        rgb = np.ascontiguousarray(self.orientation.apply(rgb))
                    yield Frame(index, t, rgb)
            except _Broken as e:
                raise BadInput(f"{self.path}: video is truncated or corrupt, decoding stopped after frame {index} ({e})") from None
            finally:
                container.close()
            if not retry:
                self.problems = decoder.problems()
                return
            back = max(16, 4 * back) if seek_to > 0 else back

    def _video_frames(self, start: int, every: int, limit: int | None, threads: int | None) -> Iterator[Frame]:
        import av

        n = 0
        index = -1
        limited = False
        self.problems = []
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise BadInput(f"{self.path}: cannot open video ({_first_line(e)})") from None
        decoder = _Decoder(self, container, threads)
        try:
            for frame in decoder.frames():
                index += 1
                if index < start or index % every:
                    continue
                if limit is not None and n >= limit:
                    limited = True
                    break
                t = float(frame.time) if frame.time is not None else index / self.fps
                rgb = frame_rgb(frame)
                if not self.orientation.identity:
                    rgb = np.ascontiguousarray(self.orientation.apply(rgb))
                yield Frame(index, t, rgb)
                n += 1
        except _Broken as e:
            where = f"after frame {index}" if index >= 0 else "before the first frame"
            raise BadInput(f"{self.path}: video is truncated or corrupt, decoding stopped {where} ({e})") from None
        finally:
            container.close()
        if not limited:
            self.problems = decoder.problems()
        if index < 0:
            raise BadInput(f"{self.path}: video holds no decodable frames (truncated or corrupt)")
        if not limited and decoder.lost > index + 1:  # more lost than read: not a damaged file, a broken one
            raise BadInput(f"{self.path}: video is corrupt: {decoder.lost} of its {decoder.lost + index + 1} frames could not be decoded")
        if not limited and self.count_exact and index + 1 + decoder.lost < 0.98 * self.frame_count - 1:
            raise BadInput(f"{self.path}: video is truncated: it ends after {index + 1} of the {self.frame_count} frames its header announces")


class _Broken(Exception):
    """Decoding cannot go on (demuxer error, or too many bad packets in a row)."""


# Packets in a row the decoder may reject before the file counts as broken, not damaged.
MAX_BAD_PACKETS_IN_A_ROW = 25


class _Decoder:
    """Packet-by-packet decoding of the first video stream: bad packets are skipped and
    remembered, interlaced frames go through ``bwdif``."""

    def __init__(self, reader: MediaReader, container: Any, threads: int | None) -> None:
        self.reader = reader
        self.container = container
        self.stream = container.streams.video[0]
        if threads is None:
            self.stream.thread_type = "AUTO"  # frame + slice threads: decode overlaps our work
        else:
            self.stream.thread_count = int(threads)
        self.bad: list[float | None] = []  # times of the packets the decoder rejected
        self.packet_pts: set[int] = set()
        self.frame_pts: set[int] = set()
        self.corrupt_frames: list[float] = []  # decoded, but flagged as concealed errors
        self.lost = 0
        self._graph: Any = None

    def _time(self, pts: int | None) -> float | None:
        tb = self.stream.time_base
        return None if pts is None or tb is None else float(pts * tb)

    def frames(self) -> Iterator[Any]:
        import av

        in_a_row = 0
        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.error.FFmpegError, OSError, ValueError) as e:
                raise _Broken(_first_line(e)) from None
            if packet.pts is not None and packet.size:
                self.packet_pts.add(int(packet.pts))
            try:
                decoded = packet.decode()
            except (av.error.FFmpegError, ValueError) as e:
                if isinstance(e, av.error.EOFError):
                    break
                self.bad.append(self._time(packet.pts))
                in_a_row += 1
                if in_a_row > MAX_BAD_PACKETS_IN_A_ROW:
                    raise _Broken(f"{in_a_row} packets in a row could not be decoded: {_first_line(e)}") from None
                continue
            if decoded:
                in_a_row = 0
            for frame in decoded:
                if frame.pts is not None:
                    self.frame_pts.add(int(frame.pts))
                if getattr(frame, "is_corrupt", False):
                    self.corrupt_frames.append(float(frame.time) if frame.time is not None else -1.0)
                yield from self._deinterlace(frame)
        yield from self._deinterlace(None)

    def _deinterlace(self, frame: Any) -> Iterator[Any]:
        """``frame`` through bwdif when the video is interlaced; None flushes."""
        import av

        if not self.reader.interlaced:
            if frame is not None:
                yield frame
            return
        if self._graph is None:
            if frame is None:
                return
            self._graph = av.filter.Graph()
            src = self._graph.add_buffer(template=self.stream)
            # send_frame: one output frame per input frame (same rate and timestamps);
            # parity auto: field order from the frames; interlaced: progressive frames pass as they are.
            bw = self._graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced")
            sink = self._graph.add("buffersink")
            src.link_to(bw)
            bw.link_to(sink)
            self._graph.configure()
        self._graph.push(frame)
        while True:
            try:
                yield self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    def problems(self) -> list[str]:
        """One line per undecodable frame (up to 10, then a count), and concealed frames."""
        out: list[str] = []
        path, fps = self.reader.path, self.reader.fps or 25.0
        start = self._time(self.stream.start_time) or 0.0
        if self.bad:
            lost_pts = sorted(self.packet_pts - self.frame_pts)
            times = [self._time(p) for p in lost_pts] if lost_pts else self.bad
            self.lost = max(len(times), len(self.bad))
            for t in times[:10]:
                if t is None:
                    out.append(f"{path}: a frame could not be decoded (corrupt data) and was skipped")
                else:
                    out.append(f"{path}: frame {round((t - start) * fps)} at {t - start:.2f} s could not be decoded (corrupt data) and was skipped; the frames around it were read")
            if len(times) > 10:
                out.append(f"{path}: {len(times) - 10} more frames could not be decoded and were skipped")
        if self.corrupt_frames:
            ts = ", ".join(f"{t - start:.2f} s" for t in self.corrupt_frames[:5]) + (" …" if len(self.corrupt_frames) > 5 else "")
            out.append(f"{path}: {len(self.corrupt_frames)} frame(s) decoded with concealed errors (damaged data) at {ts}")
        return out


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


def _first_frame(container: Any, stream: Any) -> Any:
    """The first frame that decodes (None when none does in the first packets)."""
    import av

    bad = 0
    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except (av.error.FFmpegError, ValueError):
                bad += 1
                if bad > MAX_BAD_PACKETS_IN_A_ROW:
                    return None
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    return None


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
        time_base = stream.time_base
        pix_fmt = str(stream.codec_context.pix_fmt or "")
        field_order = FIELD_ORDERS.get(int(getattr(stream.codec_context, "field_order", 0) or 0), "unknown")
        # Rotation and interlacing show on the decoded frames (side data, flags): look at the first.
        first = _first_frame(container, stream)
        orientation = orientation_from_matrix(_display_matrix(first)) if first is not None else Orientation()
        interlaced = bool(first is not None and getattr(first, "interlaced_frame", False)) or field_order not in ("unknown", "progressive")
        if interlaced and field_order in ("unknown", "progressive"):
            field_order = "field order from the frames"
    finally:
        container.close()
    sw, sh = orientation.shown_size(w, h)
    return MediaReader(
        p, "video", fps, count, sw, sh, has_audio, count_exact=exact, orientation=orientation, interlaced=interlaced,
        field_order=field_order, pix_fmt=pix_fmt, time_base=time_base, stored_size=(w, h),
    )


# ---------------------------------------------------------------------------------------
# One file for convert: opening, decoder threads, seeking to one frame
# ---------------------------------------------------------------------------------------
def open_single(path: Path, command: str = "convert") -> "MediaReader":
    """:func:`open_media` for commands that take one video or one image (a folder is refused)."""
    reader = open_media(path)
    if reader.kind == "folder":
        raise BadInput(f"{path}: is a folder; {command} takes one video or one image")
    return reader


def decoder_threads(width: int, height: int) -> int | None:
    """Video decoder threads for the input: one up to 1080p, else FFmpeg's own choice (None).

    Like the encoder: the stages already keep every core busy, and FFmpeg's frame threads
    cost CPU to hand frames over (512²: ≈1.0 ms a frame on one thread, 1.3–1.9 ms with
    FFmpeg's choice of three, measured). One thread decodes a 1080p H.264 frame in roughly
    8× the 512² time (an estimate from the pixel count), still well above the model's rate.
    """
    return 1 if width * height <= 1920 * 1080 else None


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
                return frame_rgb(frame)
            last = i
    except av.error.FFmpegError as e:
        raise BadInput(f"{path}: cannot decode frame {index} ({str(e).splitlines()[0]})") from None
    finally:
        container.close()
    raise BadInput(f"{path}: frame {index} is past the end of the video (last frame {last})")
