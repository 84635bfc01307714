"""Convert's image-sequence outputs: the swapped plate, the matte and the face layer, per frame,
at the plate's own precision.

The pipeline detects, aligns, runs the model and composites on the display-referred 8-bit
picture (what the model was trained on). For a sequence the blend stage hands this sink the
layers instead of a finished 8-bit frame: the paste's region, its alpha (the exact soft mask)
and the face it pasted (display-referred, after colour transfer; the Poisson-cloned face with
``--blend poisson``). The sink re-reads the plate's own values and composites there::

    out   = plate · (1 − α) + inv(face) · α        (in the plate's space; α = the matte)
    face  = (inv(face) · α, α)                      (premultiplied RGBA, plate space)

so ``out = face over plate``, and every pixel with α = 0 keeps the plate's value. Then the
label (unless switched off) and the watermark go on in the display-referred domain and are
mapped back (:mod:`facedub.safety.sequence_marks`): a lossless output differs from its
plate outside the face by the mark alone.

Matte files hold α exactly as used: the paste uses α rounded to what the matte file stores
(1/65535 steps in a 16-bit PNG/TIFF, 1/255 in an 8-bit PNG, float32 in EXR). Face layers in
EXR are premultiplied RGBA (the EXR convention); in PNG/TIFF/DPX straight (unpremultiplied)
RGBA, the convention of those formats. A DPX plate keeps its bit depth (8, 10 or 16); DPX
mattes and face layers are 16-bit.

Frames outside the requested range (the warm-up before it and the look-ahead after it, see
:func:`warmup_frames`) go through the pipeline so that temporal filters see them, and are
not written (:meth:`SequenceSink.skips`). With the rest of what makes a range render as it
does inside the whole shot — per-frame detection, model batches and identity re-checks on
fixed frame numbers (:class:`Span`), an output id derived from the job (:func:`job_id`) — a
shot split into chunks on a render farm writes the same files as one run. A video input
gets the same :class:`Span` in frame indices from 0 (read from a seek by
:meth:`facedub.media.reader.MediaReader.frames_between`) when it is given a range or written
as a sequence.

Also here: which names convert takes for sequences (:func:`names_sequence`), the checks of
the output patterns (:func:`check_outputs`), and the frames the content gate samples
(:func:`sample_frames`). The sink writes frames on :func:`writer_threads` threads and removes
everything it wrote when the run fails or is stopped (:meth:`SequenceSink.abort`).
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facedub.errors import BadInput
from facedub.media import sequence as seqmod
from facedub.safety import sequence_marks as marks


@dataclass(frozen=True)
class SequenceOutputs:
    out: seqmod.Pattern  # the swapped plate
    matte: seqmod.Pattern | None = None  # the paste's alpha
    face: seqmod.Pattern | None = None  # the swapped face layer


@dataclass
class Layers:
    """What the blend stage hands a sequence sink for one frame."""

    index: int  # the frame number
    plate8: np.ndarray  # the display-referred 8-bit input frame (before the paste)
    face: np.ndarray | None  # landmarks (frame px) of the pasted face, or None
    paste: tuple[Any, np.ndarray, np.ndarray] | None  # (Region, alpha over it float32, pasted face uint8 over it) or None


# ----------------------------------------------------------------------------------------
# Frame ranges and warm-up

# Influence left of the filters' state before the warm-up, relative: below float64's own
# resolution, so a chunk's landmarks and colour statistics come out as the whole run's.
SETTLED = 1e-16


def settle_frames(per_frame: float) -> int:
    """Frames an exponential filter keeping ``per_frame`` of its state needs to forget it to
    :data:`SETTLED`."""
    if per_frame <= 0.0:
        return 0
    return int(math.ceil(math.log(SETTLED) / math.log(per_frame)))


def warmup_frames(config: Any, fps: float) -> tuple[int, int, int]:
    """(frames read before a range, of them the last ones the model also runs on, frames
    read after it), so that a range renders as it does inside a whole-shot run.

    Before: the one-euro landmark filter keeps at most ``1 − α`` of its state a frame
    (α at the lowest cutoff, ``min_cutoff``, for the value and the derivative alike), so
    :func:`settle_frames` of it; plus the dropout bridge (``max_gap``) and the cut detector's
    history. The model runs on the last :func:`settle_frames` (``color_smoothing``) of those:
    the colour statistics average the pasted faces. After: the bridge looks ``max_gap + 1``
    frames ahead to decide whether a dropout is bridged.
    """
    from facedub.convert.cuts import DEFAULT_WINDOW

    smooth = 0
    if config.smooth == "one-euro":
        tau = 1.0 / (2.0 * math.pi * min(config.min_cutoff, 1.0))  # the derivative's cutoff is 1 Hz
        alpha = 1.0 / (1.0 + tau * fps)
        smooth = settle_frames(1.0 - alpha)
    colour = settle_frames(config.color_smoothing) if config.color != "none" else 0
    before = max(smooth, colour) + config.max_gap + DEFAULT_WINDOW + 2
    return before, min(colour + 1, before), config.max_gap + 1


@dataclass(frozen=True)
class Span:
    """Which frames a sequence conversion reads, runs the model on and writes (inclusive)."""

    write: tuple[int, int]
    model: tuple[int, int]
    read: tuple[int, int]
    batch: int  # model batches start at frame numbers that are multiples of this

    def writes(self, n: int) -> bool:
        return self.write[0] <= n <= self.write[1]

    def models(self, n: int) -> bool:
        return self.model[0] <= n <= self.model[1]

    def batch_ends(self, n: int) -> bool:
        """``n`` is the last frame of a batch (the same batches in a chunk as in the whole run)."""
        return (n + 1) % self.batch == 0


def plan_span(on_disk: tuple[int, int], wanted: tuple[int, int] | None, config: Any, fps: float, name: str = "the sequence",
              what: str = "the sequence") -> Span:
    """The :class:`Span` for frames ``wanted`` (default: all) of a sequence holding ``on_disk``
    (or of a video: frame indices from 0, ``what="the video"``)."""
    lo, hi = on_disk
    a, b = wanted if wanted is not None else (lo, hi)
    if a > b:
        raise BadInput(f"{name}: --frames {a}-{b}: FIRST is after LAST")
    if a < lo or b > hi:
        raise BadInput(f"{name}: --frames {a}-{b} asked, {what} holds frames {lo}-{hi}")
    before, with_model, after = warmup_frames(config, fps)
    batch = max(1, int(config.batch))
    last = b + after
    last = last + (-(last + 1)) % batch  # to the end of its batch
    return Span((a, b), (max(lo, a - with_model), b), (max(lo, a - before), min(hi, last)), batch)


def open_sequence(target: str | os.PathLike[str], config: Any) -> tuple[seqmod.SequenceReader, Span]:
    """The checked reader of a sequence input (warm-up and look-ahead frames included) and its span."""
    pattern = seqmod.parse_pattern(target)
    assert pattern is not None
    on_disk = seqmod.frames_on_disk(pattern) if pattern.format is not None else []
    if pattern.format is not None and not on_disk:
        raise BadInput(f"{pattern}: no files match in {pattern.folder if str(pattern.folder) else '.'}")
    if pattern.format is None:
        seqmod.scan_sequence(pattern)  # the one-line refusal of other formats
    span = plan_span((on_disk[0], on_disk[-1]), config.frame_range, config, config.fps, str(pattern))
    seq = seqmod.scan_sequence(pattern, span.read)
    reader = seqmod.SequenceReader(seq, seqmod.ColourConfig(plate_space=config.plate_space), fps=config.fps)
    reader.time_origin = span.write[0]
    if seq.info.alpha:
        reader.problems.append(f"{pattern}: the plates' alpha channel is not carried over: the swapped plate is written as RGB (the face's alpha is --matte-out)")
    return reader, span


def names_sequence(text: str | os.PathLike[str]) -> bool:
    """Whether convert takes ``text`` as an image sequence: an existing file never is (a video
    named ``take#1.mp4``); a name with ``%04d``/``%d`` always is (a wrong extension is then
    refused by name); a run of ``#`` only before an image-sequence extension."""
    if Path(text).is_file():
        return False
    try:
        p = seqmod.parse_pattern(text)
    except BadInput:
        return True  # a malformed pattern: its parse names the problem
    if p is None:
        return False
    return bool(seqmod._PRINTF.search(Path(os.fspath(text)).name)) or p.format is not None


# ----------------------------------------------------------------------------------------
# Outputs


def parse_outputs(out: str | os.PathLike[str], matte: str | None, face: str | None) -> SequenceOutputs | None:
    """The sequence outputs named on the command line; None when ``out`` is a video or image."""
    pats = [seqmod.parse_pattern(p) if p is not None and names_sequence(p) else None for p in (out, matte, face)]
    for name, text, p in (("--matte-out", matte, pats[1]), ("--face-out", face, pats[2])):
        if text is not None and p is None:
            raise BadInput(f"{text}: {name} is an image sequence; put %04d or #### where the frame number goes")
    if pats[0] is None:
        if matte is not None or face is not None:
            raise BadInput(f"{out}: --matte-out and --face-out go with a sequence output (--out 'out/shot.%04d.exr')")
        return None
    return SequenceOutputs(pats[0], pats[1], pats[2])


def _pixel_for(pattern: seqmod.Pattern, plate_pixel: str, what: str) -> str:
    fmt = pattern.format
    if fmt is None:
        raise BadInput(f"{pattern}: {what} must be {seqmod.FORMAT_NAMES}")
    if fmt == "exr":
        return plate_pixel if plate_pixel in ("half", "float") else "float"  # 16-bit integers need float's 24 bits
    if plate_pixel in ("half", "float"):
        raise BadInput(f"{pattern}: the plates are float EXR; write {what} as .exr to keep their precision (PNG/TIFF/DPX hold 8 to 16 bits)")
    if plate_pixel == "uint10" and fmt != "dpx":
        return "uint16"  # 10-bit DPX plates into PNG/TIFF: 16 bits hold every 10-bit code
    return plate_pixel


def _matte_pixel(pattern: seqmod.Pattern) -> str:
    return "float" if pattern.format == "exr" else "uint16"


def quantize_alpha(alpha: np.ndarray, pixel: str) -> np.ndarray:
    """α as the matte file will hold it (so the paste uses exactly what is written)."""
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    if pixel == "uint16":
        return (np.rint(a * 65535.0) / 65535.0).astype(np.float32)
    if pixel == "uint8":
        return (np.rint(a * 255.0) / 255.0).astype(np.float32)
    return a


class EightBitPlates:
    """A video's (or image's) decoded frames as a sink's plates: 8-bit sRGB, no colour transform."""

    def __init__(self) -> None:
        self.colour = seqmod.Colour(seqmod.ColourConfig(), "png")
        self.pixel = "uint8"

    def read_plate(self, n: int, plate8: np.ndarray) -> np.ndarray:
        return seqmod.to_unit(plate8)


class SequencePlates:
    """A :class:`~facedub.media.sequence.SequenceReader`'s own plate values, read again per frame."""

    def __init__(self, reader: seqmod.SequenceReader) -> None:
        self.reader = reader
        self.colour = reader.colour
        self.pixel = reader.seq.info.pixel

    def read_plate(self, n: int, plate8: np.ndarray) -> np.ndarray:
        return self.reader.read_plate(n)


def compose(plates: Any, ctx: Any, layers: Layers, matte_pixel: str = "float", with_face: bool = False) -> tuple[marks.MarkedFrame, np.ndarray]:
    """(marked frame and face layer, alpha) of one frame composited in the plate's own space and
    precision (see the module notes); nothing written. α is rounded as ``matte_pixel`` holds it."""
    col = plates.colour
    plate = plates.read_plate(layers.index, layers.plate8)
    view = col.to_view(plate)
    values = plate.copy()
    h, w = plate.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    face_layer = np.zeros((h, w, 4), np.float32) if with_face else None
    if layers.paste is not None:
        region, mask, face8 = layers.paste
        sl = region.slices()
        a = quantize_alpha(mask, matte_pixel)
        f_vals = col.from_view(face8.astype(np.float32) / np.float32(255.0))
        ap = a[..., None]
        inside = ap > 0  # α = 0 keeps the plate's value bit for bit (no 0·x + y rounding, no NaN·0)
        values[sl] = np.where(inside, plate[sl] * (1.0 - ap) + f_vals * ap, plate[sl])
        view[sl] = np.where(inside, col.to_view(values[sl]), view[sl])
        alpha[sl] = a
        if face_layer is not None:
            face_layer[sl + (slice(0, 3),)] = f_vals * ap
            face_layer[sl + (3,)] = a
    face_pts = layers.face if layers.paste is not None else None
    marked = marks.mark_values(ctx, values, view, layers.plate8, col, face_pts, face_layer, alpha if face_layer is not None else None)
    return marked, alpha


class VideoMasterSink:
    """A sequence input written as one video master (``--codec prores4444``): each frame is
    composited and marked at the plate's precision (:func:`compose`), taken to the
    display-referred space and handed to the video writer as 16-bit RGB, so a 16-bit or float
    plate reaches the codec's 10 bits without an 8-bit step. The writer's file gets the tags,
    C2PA and manifest as any MOV (:func:`facedub.safety.policy.finalize_output`)."""

    wants_layers = True

    def __init__(self, plates: Any, ctx: Any, writer: Any) -> None:
        self.plates = plates
        self.ctx = ctx
        self.writer = writer

    def display16(self, layers: Layers) -> np.ndarray:
        """The marked frame as display-referred uint16 RGB (what the codec gets)."""
        marked, _ = compose(self.plates, self.ctx, layers)
        view = marked.values if self.plates.colour.identity else self.plates.colour.to_view(marked.values)
        return seqmod.from_unit(np.clip(view, 0.0, 1.0), "uint16")

    def write(self, layers: Layers, time: float | None = None) -> None:
        self.writer.write(self.display16(layers), time)

    def close(self) -> Any:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()

    @property
    def notes(self) -> list[str]:
        return list(self.writer.notes)


def writer_threads() -> int:
    """Frames a sequence sink composites, marks and writes side by side: one per core, at most
    4 (OpenColorIO, OpenEXR, the PNG encoder and numpy release the GIL; a 1080p EXR frame is
    about three full-frame colour transforms, the mark and up to three files)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class SequenceSink:
    """Writes the frames of ``frames`` (inclusive) of a conversion as sequences; see the module notes.

    Frames are composited and written by :func:`writer_threads` threads in any order (each
    file depends on its frame alone); ``close`` waits for them and lists the files by frame."""

    wants_layers = True

    def __init__(self, plates: Any, outputs: SequenceOutputs, ctx: Any, frames: tuple[int, int], inputs: dict[str, Any],
                 threads: int | None = None, sign_frames: bool = False) -> None:
        self.plates = plates
        self.sign_frames = sign_frames  # C2PA in every PNG/TIFF frame (marks.sign_frame)
        self._creds: Any = None
        self.outputs = outputs
        self.ctx = ctx
        self.frames = frames
        self.inputs = inputs
        self.out_pixel = _pixel_for(outputs.out, plates.pixel, "--out")
        self.face_pixel = _pixel_for(outputs.face, plates.pixel, "--face-out") if outputs.face is not None else None
        self.matte_pixel = _matte_pixel(outputs.matte) if outputs.matte is not None else "float"
        self.written: list[dict[str, Any]] = []
        self.manifests: list[Path] = []
        self.closed = False
        self.threads = threads or writer_threads()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self._lock = threading.Lock()
        for p in (outputs.out, outputs.matte, outputs.face):
            if p is not None:
                p.folder.mkdir(parents=True, exist_ok=True)

    def skips(self, index: int) -> bool:
        return not self.frames[0] <= index <= self.frames[1]

    def _tags(self, role: str) -> dict[str, str]:
        return marks.tags_for(self.ctx, self.plates.colour, role)

    def _write(self, pattern: seqmod.Pattern, n: int, pixels: np.ndarray, pixel: str, role: str) -> None:
        path = pattern.path(n)
        rec: dict[str, Any] = {"path": str(path), "role": role, "frame": n}
        with self._lock:
            self.written.append(rec)  # listed first: abort() removes it even if writing fails half-way
        seqmod.write_frame(path, pixels, pixel, self._tags(role))  # type: ignore[arg-type]
        if self.sign_frames and marks.c2pa_format(path):
            if self._creds is None:
                from facedub.safety.provenance import signing_credentials

                self._creds = signing_credentials()
            marks.sign_frame(path, self.ctx, self._creds)
            rec["c2pa"] = True
        rec["sha256"] = marks.file_record(path, role, n)["sha256"]

    def compose(self, layers: Layers) -> tuple[marks.MarkedFrame, np.ndarray]:
        """(marked frame and face layer, alpha) for one frame; nothing written."""
        return compose(self.plates, self.ctx, layers, self.matte_pixel, self.outputs.face is not None)

    def write(self, layers: Layers, time: float | None = None) -> None:
        """Queue one frame (written by the sink's threads); raises the error of a frame that failed."""
        if self.skips(layers.index):
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="facedub-sequence-write")
        while self._pending and (self._pending[0].done() or len(self._pending) >= 2 * self.threads):
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write_frame, layers))

    def _finish_pending(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def _write_frame(self, layers: Layers) -> None:
        n = layers.index
        marked, alpha = self.compose(layers)
        self._write(self.outputs.out, n, marked.values, self.out_pixel, "plate")
        if self.outputs.matte is not None:
            fmt = self.outputs.matte.format
            if fmt == "exr":
                m = np.repeat(alpha[..., None], 4, 2)  # R = G = B = A = α
            else:
                m = seqmod.from_unit(alpha, "uint16")  # exact: α was rounded to 1/65535 for the paste
                m = np.repeat(m[..., None], 3, 2) if fmt in ("tiff", "dpx") else m
            self._write(self.outputs.matte, n, m, self.matte_pixel, "matte")
        if self.outputs.face is not None and marked.face_values is not None:
            fl = marked.face_values
            if self.outputs.face.format != "exr":  # straight alpha for PNG/TIFF
                a = fl[..., 3:4]
                rgb = np.where(a > 0, fl[..., :3] / np.where(a > 0, a, 1.0), 0.0)
                fl = np.concatenate([rgb, a], axis=2)
                fl = seqmod.from_unit(fl, self.face_pixel)  # type: ignore[arg-type]
            self._write(self.outputs.face, n, fl, self.face_pixel or "half", "face")

    def close(self) -> None:
        """The manifests (one per output folder), after every frame was written."""
        self._finish_pending()
        roles = {"plate": 0, "matte": 1, "face": 2}
        files = sorted(self.written, key=lambda r: (r["frame"], roles.get(r["role"], 3)))
        self.manifests = marks.write_manifests(self.ctx, files, self.outputs.out.stem(), self.frames, self.plates.colour, self.inputs)
        self.closed = True

    def abort(self) -> None:
        """Remove the frames this run wrote: an interrupted render leaves no partial set behind."""
        if self.closed:
            return
        try:
            self._finish_pending()
        except BaseException:  # noqa: BLE001 - the run failed already; its files go either way
            pass
        for rec in self.written:
            try:
                Path(rec["path"]).unlink()
            except OSError:
                pass
        self.written.clear()

    @property
    def notes(self) -> list[str]:
        return []


def check_outputs(outputs: SequenceOutputs, inputs: list[Path | None], plates: seqmod.Pattern | None = None, first: int = 0) -> None:
    """Refuse outputs that would overwrite the plates (or another input), or two outputs sharing one pattern."""
    from facedub.outputs import check_output

    seen: dict[str, str] = {}
    for name, p in (("--out", outputs.out), ("--matte-out", outputs.matte), ("--face-out", outputs.face)):
        if p is None:
            continue
        if p.format is None:
            raise BadInput(f"{p}: {name} must be {seqmod.FORMAT_NAMES}")
        key = str(p.folder.resolve() / (p.prefix + "%d" + p.suffix))
        if key in seen:
            raise BadInput(f"{p}: {name} and {seen[key]} name the same files")
        seen[key] = name
        if plates is not None and p.folder.resolve() == plates.folder.resolve() and p.prefix == plates.prefix and p.suffix == plates.suffix:
            raise BadInput(f"{p}: {name} would overwrite the input plates; choose another name or folder")
        check_output(p.path(first), inputs=[i for i in inputs if i is not None], what=name, create_parents=True)


def job_id(target: str | os.PathLike[str], model: Any, outputs: SequenceOutputs | None, out: str | os.PathLike[str], config: Any, meta: dict[str, Any]) -> str:
    """The output id of a render: the same for every chunk of it (see :func:`marks.job_output_id`)."""

    def where(p: Any) -> str | None:
        if p is None:
            return None
        p = Path(os.fspath(p.text if isinstance(p, seqmod.Pattern) else p))
        return str(p.parent.resolve() / p.name)

    settings = {k: v for k, v in asdict(config).items() if k not in RUN_ONLY}
    parts = {
        "target": where(target),
        "model": meta.get("model_id") or meta.get("id") or (where(model) if isinstance(model, (str, os.PathLike)) else None),
        "out": where(outputs.out if outputs is not None else out),
        "matte": where(outputs.matte) if outputs is not None else None,
        "face": where(outputs.face) if outputs is not None else None,
        "settings": settings,
    }
    return marks.job_output_id(parts)


# ConvertConfig fields that do not change the pictures (or that differ between the chunks of one render).
RUN_ONLY = ("frame_range", "max_frames", "workers", "threads", "nice", "queue_size", "device", "c2pa_frames")


def sample_frames(reader: Any, span: Span, every_seconds: float = 1.0) -> Callable[[], list[tuple[int, float, np.ndarray]]]:
    """The frames of the written range the content gate looks at (one a second, the first and
    the last), as a function returning (frame number, seconds, display-referred uint8)."""

    def get() -> list[tuple[int, float, np.ndarray]]:
        a, b = span.write
        step = max(1, int(round(reader.fps * every_seconds)))
        nums = sorted(set(list(range(a, b + 1, step)) + [b]))
        out = []
        for n in nums:
            out.append((n, (n - a) / reader.fps, seqmod.display8(reader.view(reader.read_plate(n)))))
        return out

    return get
