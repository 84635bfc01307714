"""H.264 (or ProRes 4444, or lossless FFV1) video writer that copies the audio and subtitles of another file unchanged (PyAV / libx264).

``VideoWriter(path, width, height, fps, audio_from=...)`` encodes RGB frames to H.264
yuv420p (4:4:4 at an odd size) and muxes the audio and subtitle packets of ``audio_from`` (every such stream, with
its language and title) into the same file as they are (a remux: no re-encode, bit-identical
packets). The file is written under a temporary name beside ``path`` and renamed onto it by
``close()``; an error (or ``abort()``) removes it, so a crash never leaves half a file under
the output name.

Files as cameras make them:

- ``write(rgb, time=t)`` gives a frame its own timestamp (seconds, on the clock of
  ``audio_from``): variable frame rate is kept, and audio stays in sync because both keep the
  source's clock. Without ``time`` frames are spaced 1/fps apart from 0, as before.
- yuv420p needs an even width and height, and H.264 can crop its 4:2:0 pictures only by
  whole chroma samples (2 px): an odd size (e.g. 641x359) is written in 4:4:4 (High 4:4:4
  Predictive, same BT.601 matrix) at exactly the input's size, so PyAV and FFmpeg-based
  players decode it at 641x359. (Padding to 642x360 with an MP4 clean-aperture box was tried:
  the FFmpeg inside PyAV 18 ignores the box and decodes 642x360.) ``notes`` says so, and that
  browsers, QuickTime and hardware decoders may not play 4:4:4 H.264.
- A subtitle stream the output container cannot hold (e.g. SubRip in MP4) is left out with a
  line in ``notes``; audio that cannot be copied is a BadInput.

Also :class:`ImageWriter` (one image, the same calls) and :func:`encoder_threads` (x264 threads
for convert's output).
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facedub.errors import BadInput

# Container format by file extension.
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Video codecs by name: (FFmpeg encoder, pixel format). FFV1 keeps RGB as it is (no YUV step),
# 8-bit as bgr0, 16-bit as gbrp16le (``bits=16``): decoded again it is the frame written, bit
# for bit. The MOV muxer of the FFmpeg inside PyAV refuses FFV1 ("'mov' format does not
# support 'ffv1' codec"), so it goes in Matroska (.mkv).
CODECS: dict[str, tuple[str, str]] = {"h264": ("libx264", "yuv420p"), "prores4444": ("prores_ks", "yuv444p10le"), "ffv1": ("ffv1", "bgr0")}
# The container each codec other than H.264 is written in.
CODEC_CONTAINER = {"prores4444": ("mov", ".mov", "a QuickTime .mov file"), "ffv1": ("matroska", ".mkv", "a Matroska .mkv file")}

# Stream types copied from ``audio_from``.
COPIED_TYPES = ("audio", "subtitle")

# Time base of the video stream when frames carry their own timestamps: fine enough for any
# rate (3003 ticks per NTSC frame, 3600 at 25 fps, 1500 at 60 fps).
TIMED_BASE = Fraction(1, 90000)


def _fraction(fps: float | Fraction) -> Fraction:
    if isinstance(fps, Fraction):
        return fps
    f = Fraction(fps).limit_denominator(1001)
    if f <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return f


class VideoWriter:
    """Write frames to an H.264 file; copy ``audio_from``'s audio and subtitle streams unchanged.

    ``audio_duration`` (seconds) limits the copied packets (used when only the first frames
    of a video are converted); ``None`` copies them all. ``audio_window=(start, end)``
    (seconds on ``audio_from``'s clock, used with ``timed``) copies only the packets that start
    in it, moved earlier by ``start``: a trimmed render whose first frame is written at time 0
    (``time=t - start``) keeps its sound in sync, the packets unchanged; at most one audio
    packet (about 21 ms of AAC at 48 kHz) is missing at each end, as in any cut without
    re-encoding. ``timed=True`` makes the video
    stream's time base fine enough for per-frame timestamps (``write(rgb, time=...)``);
    without it, a ``time`` given to ``write`` is rounded to the 1/fps grid.
    ``notes`` lists what the writer did that a user may want to know (padding, streams left out).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float | Fraction,
        audio_from: str | os.PathLike[str] | None = None,
        crf: int = 18,
        metadata: dict[str, str] | None = None,
        *,
        preset: str = "veryfast",
        audio_duration: float | None = None,
        threads: int = 0,
        timed: bool = False,
        codec: str = "h264",
        bits: int = 8,
        audio_window: tuple[float, float] | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        fmt = FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise BadInput(f"{self.path}: unsupported video extension (use {', '.join(sorted(FORMATS))})")
        if codec not in CODECS:
            raise BadInput(f"{self.path}: codec {codec!r} is not one of {', '.join(CODECS)}")
        if codec != "h264" and fmt != CODEC_CONTAINER[codec][0]:
            _, ext, what = CODEC_CONTAINER[codec]
            raise BadInput(f"{self.path}: {codec} is written in {what}; name the output {ext}")
        if bits not in (8, 16):
            raise ValueError(f"bits must be 8 or 16, got {bits}")
        self.codec = codec
        self.bits = bits if codec == "ffv1" else 8
        if not self.path.parent.is_dir():
            raise BadInput(f"{self.path}: folder {self.path.parent} does not exist")
        if width < 1 or height < 1:
            raise BadInput(f"{self.path}: cannot write a {width}x{height} video")
        self.width, self.height = int(width), int(height)
        self.coded_width, self.coded_height = self.width, self.height
        self.notes: list[str] = []
        # Odd side: H.264 4:2:0 cannot hold it (nor crop to it); 4:4:4 keeps the exact size.
        self.full_chroma = codec == "h264" and (self.width % 2 == 1 or self.height % 2 == 1)
        if self.full_chroma:
            self.notes.append(
                f"{self.path}: {self.width}x{self.height} has an odd side, which H.264 4:2:0 cannot hold; "
                f"written at the same {self.width}x{self.height} in 4:4:4 (High 4:4:4 profile): FFmpeg-based "
                "players (VLC, mpv) show it, browsers, QuickTime and hardware decoders may not play it"
            )
        self.fps = _fraction(fps)
        self.frames = 0
        self._audio_duration = audio_duration
        self._window = audio_window
        self._timed = bool(timed)
        self._last_pts = -1
        self._pts_origin: int | None = None  # timed: shift applied so the first pts is >= 0
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".part{self.path.suffix}", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._out: Any = None
        self._in: Any = None
        self._closed = False
        try:
            # use_metadata_tags: any key (the provenance tags) is written as it is, not only the standard few.
            options = {"movflags": "+faststart+use_metadata_tags"} if fmt in ("mp4", "mov") else {}
            self._out = av.open(str(self._tmp), "w", format=fmt, options=options)
            if metadata:
                self._out.metadata.update({str(k): str(v) for k, v in metadata.items()})
            encoder, pix_fmt = CODECS[codec]
            vs = self._out.add_stream(encoder, rate=self.fps)
            if self.full_chroma:
                pix_fmt = "yuv444p"
            if codec == "ffv1" and self.bits == 16:
                pix_fmt = "gbrp16le"
            vs.width, vs.height, vs.pix_fmt = self.coded_width, self.coded_height, pix_fmt
            if self._timed:
                vs.codec_context.time_base = TIMED_BASE
                vs.time_base = TIMED_BASE
            self._time_base = TIMED_BASE if self._timed else 1 / self.fps
            # Say which matrix the pixels are in (BT.601, limited range: see yuv420p_frame): an
            # untagged HD file is decoded by most players with BT.709, shifting its colours.
            if codec == "ffv1":  # RGB planes, full range
                vs.codec_context.colorspace = 0  # AVCOL_SPC_RGB
                vs.codec_context.color_range = 2  # AVCOL_RANGE_JPEG (full)
            else:
                vs.codec_context.colorspace = 6  # AVCOL_SPC_SMPTE170M (BT.601)
                vs.codec_context.color_range = 1  # AVCOL_RANGE_MPEG (limited)
            if codec == "h264":
                vs.codec_context.options = {"crf": str(int(crf)), "preset": preset}
            elif codec == "ffv1":  # version 3: a CRC per slice, so a damaged file is detected on decoding
                vs.codec_context.options = {"level": "3", "slicecrc": "1"}
            else:  # ProRes 4444 (profile 4), 10-bit 4:4:4; FFmpeg's RGB→YUV is BT.601 limited, tagged above
                vs.codec_context.options = {"profile": "4", "vendor": "apl0"}
            if threads < 0:
                raise ValueError(f"threads must be 0 (x264 decides) or more, got {threads}")
            vs.thread_count = int(threads)  # 0: x264's own choice (about 1.5 per core)
            self._video = vs
            self._copies: dict[int, Any] = {}  # input stream index → output stream
            self._starts: dict[int, float] = {}  # input stream index → its start time (s)
            self._past_limit: set[int] = set()  # streams whose packets reached audio_duration
            self._packets: Iterator[Any] | None = None
            self._pending: Any = None
            self._source_start = 0.0
            if audio_from is not None:
                self._open_copies(Path(audio_from))
        except BaseException:
            self.abort()
            raise

    # -- audio and subtitles ---------------------------------------------------------------
    def _open_copies(self, src: Path) -> None:
        import av

        try:
            self._in = av.open(str(src))
        except (av.FFmpegError, OSError) as e:
            raise BadInput(f"{src}: cannot read audio: {e}") from e
        streams = [s for s in self._in.streams if s.type in COPIED_TYPES]
        if not streams:
            self._in.close()
            self._in = None
            return
        kept = []
        for s in streams:
            name = s.codec_context.name if s.codec_context is not None else "unknown codec"
            try:
                out = self._out.add_stream_from_template(s)
            except (av.FFmpegError, ValueError) as e:
                if s.type == "audio":
                    raise BadInput(f"{src}: its audio stream {s.index} ({name}) cannot be copied into {self.path.suffix}: {e}") from e
                self.notes.append(f"{src}: subtitle stream {s.index} ({name}) cannot go into {self.path.suffix} and was left out (MP4 and MOV hold mov_text subtitles)")
                continue
            for key in ("language", "title", "handler_name"):
                if key in s.metadata:
                    out.metadata[key] = s.metadata[key]
            try:
                out.disposition = s.disposition
            except (AttributeError, TypeError, ValueError):
                pass
            self._copies[s.index] = out
            self._starts[s.index] = float((s.start_time or 0) * s.time_base) if s.time_base is not None else 0.0
            kept.append(s)
        if not kept:
            return
        if self._in.start_time is not None:
            self._source_start = self._in.start_time / 1_000_000
        self._packets = iter(self._in.demux(*kept))

    def _copy_until(self, seconds: float | None) -> None:
        """Mux the copied packets that start before ``seconds`` (all when None).

        ``seconds`` is on the source's clock in timed mode, else from each stream's own start.
        """
        if self._packets is None:
            return
        limit = self._audio_duration
        while True:
            pkt = self._pending
            self._pending = None
            if pkt is None:
                try:
                    pkt = next(self._packets)
                except StopIteration:
                    self._packets = None
                    return
                if pkt.dts is None or pkt.size == 0:  # demuxer flush packet
                    continue
            idx = pkt.stream.index
            t = float(pkt.pts * pkt.time_base) if pkt.pts is not None else float(pkt.dts * pkt.time_base)
            from_start = t - self._starts.get(idx, 0.0)
            window = self._window
            if window is not None and t < window[0] - 1e-6:
                continue  # before the trimmed render's first frame
            if (limit is not None and from_start >= limit - 1e-6) or (window is not None and t >= window[1] - 1e-6):
                self._past_limit.add(idx)  # beyond the converted part
                if len(self._past_limit) == len(self._copies):
                    self._packets = None  # every stream is done: leave the rest unread
                    return
                continue
            clock = (t - window[0] if window is not None else t) if self._timed else from_start
            if seconds is not None and clock > seconds:
                self._pending = pkt
                return
            if window is not None:
                shift = int(round(window[0] / pkt.time_base))  # the window's start becomes time 0
                if pkt.pts is not None:
                    pkt.pts -= shift
                if pkt.dts is not None:
                    pkt.dts -= shift
            pkt.stream = self._copies[idx]
            self._out.mux(pkt)

    # -- video ---------------------------------------------------------------------------
    def write(self, rgb: np.ndarray, time: float | None = None) -> None:
        """Encode one RGB uint8 frame of the writer's size, shown at ``time`` seconds
        (the source's clock; None: frame number / fps)."""
        import av

        if self._closed:
            raise ValueError("write() after close()")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype not in ((np.uint8,) if self.codec == "h264" else (np.uint8, np.uint16)):
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {rgb.shape} {rgb.dtype}")
        if self.codec == "ffv1":  # RGB as it is; FFmpeg only reorders the planes
            if self.bits == 16:
                x = rgb if rgb.dtype == np.uint16 else rgb.astype(np.uint16) * np.uint16(257)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(x), format="rgb48le")
            elif rgb.dtype != np.uint8:
                raise ValueError(f"{self.path}: a 16-bit frame for an 8-bit FFV1 writer (give bits=16)")
            else:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        elif self.full_chroma:
            frame = yuv444p_frame(rgb)
        elif self.codec == "h264":
            frame = yuv420p_frame(rgb)
        else:  # 16-bit RGB keeps a 16-bit plate's precision up to the codec's 10 bits
            frame = yuv444p16_frame(rgb)
        if time is None:
            seconds = self.frames / self.fps
            pts = int(round(seconds / self._time_base))
        else:
            pts = int(round(Fraction(float(time)) / self._time_base))
            if self._pts_origin is None:
                self._pts_origin = min(0, pts)  # a negative first time: shift everything to 0
            pts -= self._pts_origin
        pts = max(pts, self._last_pts + 1)  # strictly increasing, whatever the input said
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._time_base
        for p in self._video.encode(frame):
            self._out.mux(p)
        self.frames += 1
        # Keep audio interleaved with the video (half a second ahead).
        now = float(pts * self._time_base)
        self._copy_until(now + 0.5)

    def close(self) -> Path:
        """Flush, finish the file and rename it onto ``path``. Returns ``path``."""
        if self._closed:
            return self.path
        try:
            for p in self._video.encode(None):
                self._out.mux(p)
            self._copy_until(None)
            self._out.close()
            self._out = None
            if self._in is not None:
                self._in.close()
                self._in = None
            os.replace(self._tmp, self.path)
            self._closed = True
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the temporary file; ``path`` is never created or touched."""
        self._closed = True
        for c in (self._out, self._in):
            if c is not None:
                try:
                    c.close()
                except Exception:  # already failing; the temp file goes anyway
                    pass
        self._out = self._in = None
        try:
            self._tmp.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def yuv420p_frame(rgb: np.ndarray) -> Any:
    """An ``av.VideoFrame`` in yuv420p from an RGB uint8 frame of even width and height.

    BT.601, limited range, as libswscale converts by default, done by OpenCV in 0.1 ms
    instead of PyAV's 2.1 ms ``reformat`` at 512². Luma matches libswscale to within 1; chroma
    matches on smooth content and differs on fine colour detail (OpenCV averages each 2×2
    block, libswscale filters differently).
    """
    import av
    import cv2

    return av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420), format="yuv420p")


def _bt601_limited(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y, Cb, Cr) in [0, 1] of the limited-range BT.601 code values (Y 16–235, C 16–240 of 255)."""
    x = rgb.astype(np.float32) / np.float32(65535.0 if rgb.dtype == np.uint16 else 255.0)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    cb = (x[..., 2] - y) / 1.772
    cr = (x[..., 0] - y) / 1.402
    return (16.0 + 219.0 * y) / 256.0, (128.0 + 224.0 * cb) / 256.0, (128.0 + 224.0 * cr) / 256.0


def yuv444p_frame(rgb: np.ndarray) -> Any:
    """An ``av.VideoFrame`` in 8-bit yuv444p (BT.601, limited range: the matrix the writer tags)
    from an RGB uint8 frame of any size (odd ones included)."""
    import av

    planes = np.stack([np.clip(np.rint(p * 256.0), 0, 255) for p in _bt601_limited(rgb)]).astype(np.uint8)
    return av.VideoFrame.from_ndarray(planes, format="yuv444p")


def yuv444p16_frame(rgb: np.ndarray) -> Any:
    """An ``av.VideoFrame`` in yuv444p16le (BT.601, limited range) from 8- or 16-bit RGB.

    Converted here, not by FFmpeg: its RGB48 → YUV 4:4:4 10-bit path garbles frames whose
    width is not a multiple of 16 (errors of 130 levels on a ramp 97 or 98 px wide, measured
    with the FFmpeg inside PyAV 18).
    """
    import av

    x = rgb.astype(np.float32) / np.float32(65535.0 if rgb.dtype == np.uint16 else 255.0)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    cb = (x[..., 2] - y) / 1.772
    cr = (x[..., 0] - y) / 1.402
    yuv = np.stack([4096.0 + 56064.0 * y, 32768.0 + 57344.0 * cb, 32768.0 + 57344.0 * cr], axis=-1)
    return av.VideoFrame.from_ndarray(np.clip(np.rint(yuv), 0, 65535).astype(np.uint16), format="yuv444p16le")


def encoder_threads(width: int, height: int) -> int:
    """x264 threads for the output: one up to 720p, else x264's own choice (0).

    The other stages already keep every core busy; a second x264 thread only adds
    synchronisation (≈1 ms more CPU per 512² frame, measured). One x264 ``veryfast`` thread
    encodes ≈200 frames/s at 512² (measured), so roughly 55 at 720p (3.5× the pixels; an
    estimate), still above what the model allows on a CPU; beyond 720p one thread could
    become the slowest stage.
    """
    return 1 if width * height <= 1280 * 720 else 0


class ImageWriter:
    """The output of an image conversion: keeps the last frame written, saves it (PNG, or JPEG at
    quality 95) on ``close``; the same calls as :class:`VideoWriter`."""

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
