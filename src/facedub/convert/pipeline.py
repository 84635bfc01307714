"""Convert: swap the target person's face in every frame of a video, one image or an image sequence.

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

This module holds the stage functions (:func:`convert_video`, :func:`convert_preview`,
:func:`convert_frame`) and the threaded run (``_run``: one thread per method of ``_Stages``).
The pieces it strings together:

- :mod:`~facedub.convert.target`: which detected face is the target person's (identity per track);
- :mod:`~facedub.convert.smoothing`: bridging dropouts, the one-euro landmark filter, jitter;
- :mod:`~facedub.convert.blend`: the model input cut from a frame, and the :class:`Compositor`
  that pastes the face back (with :mod:`~facedub.convert.mask` and :mod:`~facedub.convert.color`);
- :mod:`~facedub.convert.runner`: loading the model and running it on batches
  (:mod:`~facedub.convert.detail` for the detail stage, :mod:`~facedub.convert.occlusion`
  for what is in front of the face);
- :mod:`~facedub.convert.cuts`: shot cuts;
- :mod:`~facedub.convert.sequence_out`: image sequences (``shot.%04d.exr``) in and out — the
  frame range and its warm-up, and the sink that composites at the plate's precision and
  writes the plate, matte and face-layer sequences;
- :mod:`facedub.media`: reading, seeking to one frame, writing video or an image.
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

from facedub.convert import occlusion as occ_mod
from facedub.convert import sequence_out
from facedub.convert.blend import Compositor, Region, mask_overlay, model_input
from facedub.convert.config import ConvertConfig
from facedub.convert.cuts import CutDetector
from facedub.convert.runner import Runner, load_convert_model, model_meta, occlusion_model
from facedub.convert.smoothing import Bridger, Smoother
from facedub.convert.target import TargetChooser, target_descriptor
from facedub.errors import BadInput, Cancelled
from facedub.media.reader import decoder_threads, open_single, read_frame_at
from facedub.media.writer import ImageWriter, encoder_threads
from facedub.progress import NullReporter, Reporter
from facedub.safety import policy

IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg")


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvertSummary:
    output: str  # the file written
    kind: str  # "video", "image" or "sequence" (what was written)
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
class PasteRecord:
    """One frame as the compositor left it, before the label, the watermark and the encoder
    (handed to ``convert_video(on_paste=...)``; read-only views, valid during the call).

    ``alpha`` is the exact paste mask the blend used (float 0..1 over ``region``; every pixel
    outside ``region``, and every pixel whose alpha is 0, is the plate's bit for bit), or
    ``None`` when nothing was pasted into this frame."""

    index: int  # frame index in the input
    time: float  # the frame's timestamp (seconds)
    region: Region | None  # the ROI ``alpha`` covers (frame pixels)
    alpha: np.ndarray | None  # paste mask over ``region``, float32 0..1
    landmarks: np.ndarray | None  # the smoothed 68 landmarks the paste used (frame pixels)
    plate: np.ndarray  # the decoded frame before the paste
    composite: np.ndarray  # the frame after the paste, before marking


@dataclass(frozen=True)
class PreviewResult:
    output: str  # the before/after PNG
    frame: int  # frame index shown
    face_found: bool
    seconds: float


class _Detector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Any]: ...


# ---------------------------------------------------------------------------------------
# How the run is spread over the cores
# ---------------------------------------------------------------------------------------
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
    swapped: bool = False  # a face was pasted
    out: Any = None  # output frame (uint8), an image sequence's layers, or None: not written


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
def _check_paths(target: Path, out: Path, kind: str, codec: str = "h264") -> None:
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
    if kind in ("video", "sequence"):
        from facedub.safety.provenance import VIDEO_SUFFIXES

        # Only containers that carry every mark: tags, Content Credentials (C2PA) and the pixels
        # (FFV1's .mkv, which C2PA cannot bind, has the manifest's sha256 instead: _check_codec).
        if out.suffix.lower() not in VIDEO_SUFFIXES and not (codec == "ffv1" and out.suffix.lower() == ".mkv"):
            what, alt = ("a video", "") if kind == "video" else ("an image sequence", ", or an image-sequence pattern such as out/shot.%04d.exr,")
            raise BadInput(f"{out}: the target is {what}, so the output must be {', '.join(VIDEO_SUFFIXES)}{alt} (the formats facedub can sign with Content Credentials)")


def _check_codec(codec: str, out: str | os.PathLike[str], kind: str, sequence_out: bool) -> None:
    """A codec other than H.264 goes with a video --out in its container: ProRes in a .mov,
    FFV1 in a .mkv (before any work is done)."""
    from facedub.media.writer import CODEC_CONTAINER

    if codec == "h264":
        return
    if sequence_out or kind == "image":
        raise BadInput(f"{out}: --codec {codec} is for a video output; an image or image sequence keeps its own format")
    _, ext, what = CODEC_CONTAINER[codec]
    if Path(out).suffix.lower() != ext:
        why = " (FFmpeg's MOV muxer refuses FFV1)" if codec == "ffv1" else ""
        raise BadInput(f"{out}: --codec {codec} is written in {what}{why}; name the output {ext}")



def _trimmed_audio_window(reader: Any, span: "sequence_out.Span") -> tuple[float, float]:
    """(start, end) seconds on the video's clock of the frames a trimmed render writes: from
    the first written frame's timestamp to the next frame's after the last (or one frame
    duration after it, at the end of the video). The audio packets starting inside are copied."""
    pts = reader.frame_pts()
    tb = reader.time_base
    first, last = span.write
    start = float(pts[first] * tb)
    end = float(pts[last + 1] * tb) if last + 1 < len(pts) else float(pts[last] * tb) + 1.0 / float(reader.fps)
    return start, end


def _make_detector(video_mode: bool) -> Any:
    from facedub.faces.detect import FaceDetector

    return FaceDetector(video_mode=video_mode)


def _close(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        close()


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
    matte_out: str | os.PathLike[str] | None = None,
    face_out: str | os.PathLike[str] | None = None,
    on_paste: Callable[[PasteRecord], None] | None = None,
) -> ConvertSummary:
    """Swap the target person's face in ``target`` (a video, one image, or an image sequence
    ``shot.%04d.exr``) and write ``out`` (a video, an image, or an image sequence, with
    ``matte_out``/``face_out`` beside it: see :mod:`facedub.convert.sequence_out`).

    ``model`` is a model folder or an already loaded model (``facedub.model.load_model``).
    ``detector`` (an object with ``detect(rgb)``) and ``identity`` (a factory of an object with
    ``descriptor(rgb, landmarks68)``) replace the default mediapipe / dlib ones, for tests.
    ``on_paste`` is called with a :class:`PasteRecord` for every frame, in frame order, from
    the blending thread (datasets take their manipulation masks from it); it does not change
    what is written.

    The steps: open the input (:func:`_open_input`), check the outputs before any work
    (:func:`_check_outputs`), load the model, pass the safety checks (``begin_output``), open
    the sink (:func:`_open_sink`), run the threaded pipeline (:func:`_run`), finish the file
    (``finalize_output``) and summarise (:func:`_summary`).
    """
    config = config or ConvertConfig()
    reporter = reporter or NullReporter()
    t0 = time.perf_counter()
    outputs = sequence_out.parse_outputs(out, None if matte_out is None else os.fspath(matte_out), None if face_out is None else os.fspath(face_out))
    inp = _open_input(target, config, outputs)
    _check_outputs(inp, model, out, outputs, config)
    loaded = load_convert_model(model, config.device)
    meta = model_meta(loaded)
    runner = Runner(loaded, config.reverse, config.precision, config.detail)
    # The single safety decision point: consent of both identities, content gate on the target.
    ctx = policy.begin_output(
        inp.first_input, meta, settings=asdict(config), visible_label=config.visible_label, reporter=reporter,
        output_id=sequence_out.job_id(target, model, outputs, out, config, meta) if inp.span is not None else None,
        frames=sequence_out.sample_frames(inp.reader, inp.span) if inp.seq_in else None,
    )

    own_detector = detector is None
    # A sequence is read frame by frame without the detector's tracking: each frame's faces
    # depend on that frame alone, so a range renders as it does inside the whole shot.
    # A video read by frame index likewise (its chunks must match one run).
    det = detector if detector is not None else _make_detector(video_mode=(inp.kind == "video" and not inp.video_span))
    total = _frame_total(inp, config)
    warnings: list[str] = [runner.detail_note] if runner.detail_note else []
    counts = {"swapped": 0, "bridged": 0, "no_face": 0, "frames": 0, "cuts": 0, "identity_checks": 0}
    phases: dict[str, float] = {}
    pipe = _Pipeline(_queue_size(config, inp.reader))
    smoother = Smoother(config, inp.fps)
    try:
        with contextlib.ExitStack() as stack:
            sink, tmp = _open_sink(stack, inp, model, out, outputs, config, ctx, meta, total, warnings)
            t_frames = time.perf_counter()
            phases["checks"] = round(t_frames - t0, 3)
            try:
                # OpenCV splitting each small warp / blur over the cores costs more CPU than
                # it saves wall time once every core runs a stage (≈1.4 ms a face at 512²).
                with _opencv_threads(1):
                    _run(pipe, inp.reader, det, runner, meta, config, smoother, sink, reporter, total, counts, identity, ctx,
                         occlusion_model(config, model), on_paste=on_paste, span=inp.span)
                warnings.extend(_check_counts(inp, config, counts))
                sink.close()
            except BaseException:
                sink.abort()
                raise
            warnings.extend(getattr(inp.reader, "problems", []))  # frames the decoder could not read
            t_finish = time.perf_counter()
            phases["frames"] = round(t_finish - t_frames, 3)
            if tmp is not None:
                policy.finalize_output(tmp, ctx, final_path=Path(out))
            phases["finish"] = round(time.perf_counter() - t_finish, 3)
    finally:
        pipe.shutdown()
        if own_detector:
            _close(det)

    warnings.extend(_after_run_notes(meta, config, counts))
    for w in warnings:
        reporter.note(w)
    return _summary(inp, out, outputs, counts, time.perf_counter() - t0, smoother, pipe, phases, warnings, runner)


@dataclass
class _Input:
    """What convert reads: the reader, its kind and, when frames are chosen by number, the span."""

    target: str | os.PathLike[str]
    reader: Any
    kind: str  # "video", "image" or "sequence"
    span: "sequence_out.Span | None" = None  # frames read and written (a sequence, or a video read by frame index)

    @property
    def video_span(self) -> bool:
        """A video read by frame index (a range of it, or a video into a sequence)."""
        return self.span is not None and self.kind == "video"

    @property
    def seq_in(self) -> bool:
        """The input is an image sequence."""
        return self.span is not None and not self.video_span

    @property
    def first_input(self) -> Path:
        """The input file the checks name: a sequence's first frame, else the target."""
        return Path(self.reader.path) if self.seq_in else Path(self.target)

    @property
    def fps(self) -> float:
        return float(self.reader.fps) if self.kind in ("video", "sequence") else 0.0


def _open_input(target: str | os.PathLike[str], config: ConvertConfig, outputs: "sequence_out.SequenceOutputs | None") -> _Input:
    """Open the target, and plan the span of frames when they are chosen by number."""
    if sequence_out.names_sequence(target):
        reader, span = sequence_out.open_sequence(target, config)
        return _Input(target, reader, "sequence", span)
    reader = open_single(Path(target))
    inp = _Input(target, reader, reader.kind)
    if config.frame_range is not None and inp.kind != "video":
        raise BadInput(f"{target}: a frame range FIRST-LAST is for a video or an image sequence, not a single image")
    if inp.kind == "video" and (config.frame_range is not None or outputs is not None):
        inp.span = _video_span(target, reader, config)
    return inp


def _video_span(target: str | os.PathLike[str], reader: Any, config: ConvertConfig) -> "sequence_out.Span":
    """A range of a video, or a video into a sequence (whose chunks must match one run):
    frames indexed from 0 by PTS, read from a seek, as a sequence's span."""
    if config.frame_range is not None and config.max_frames is not None:
        raise BadInput(f"{target}: give --frames FIRST-LAST or --max-frames N, not both")
    count = len(reader.frame_pts())
    if count == 0:
        raise BadInput(f"{target}: video holds no frames")
    wanted = config.frame_range
    if wanted is None and config.max_frames is not None:
        wanted = (0, min(count, config.max_frames) - 1)
    span = sequence_out.plan_span((0, count - 1), wanted, config, reader.fps, str(target), what="the video")
    reader.frame_count = count
    return span


def _check_outputs(inp: _Input, model: Any, out: str | os.PathLike[str], outputs: "sequence_out.SequenceOutputs | None", config: ConvertConfig) -> None:
    """Every check of the output names and the codec, before any work."""
    if outputs is not None:
        sequence_out.check_outputs(outputs, [None if inp.seq_in else inp.first_input, Path(model) if isinstance(model, (str, os.PathLike)) else None],
                                   inp.reader.seq.pattern if inp.seq_in else None, inp.span.write[0] if inp.span is not None else 0)
    _check_codec(config.codec, out, inp.kind, outputs is not None)
    if outputs is None:
        _check_paths(inp.first_input, Path(out), inp.kind, config.codec)


def _frame_total(inp: _Input, config: ConvertConfig) -> int:
    """Frames the run will read (warm-up included), for the progress bar."""
    if inp.video_span:
        return inp.span.read[1] - inp.span.read[0] + 1
    return inp.reader.frame_count if config.max_frames is None else min(inp.reader.frame_count, config.max_frames)


def _queue_size(config: ConvertConfig, reader: Any) -> int:
    """Bound the frames in flight (≈ 4 queues + a batch) to about 512 MB for large frames."""
    frame_bytes = max(1, reader.width * reader.height * 3)
    return max(2, min(config.queue_size, (512 << 20) // (5 * frame_bytes)))


def _open_sink(stack: contextlib.ExitStack, inp: _Input, model: Any, out: str | os.PathLike[str], outputs: "sequence_out.SequenceOutputs | None",
               config: ConvertConfig, ctx: policy.OutputContext, meta: dict[str, Any], total: int, warnings: list[str]) -> tuple[Any, Path | None]:
    """(sink, temporary file or None): where the frames go, an image sequence, a video or an image."""
    from facedub.fileio import atomic_path

    if outputs is not None:
        plates = sequence_out.SequencePlates(inp.reader) if inp.seq_in else sequence_out.EightBitPlates()
        written = inp.span.write if inp.span is not None else (0, total - 1)
        inputs = {"target": os.fspath(inp.target), "frames": list(written), "model": os.fspath(model) if isinstance(model, (str, os.PathLike)) else meta.get("model_id")}
        return sequence_out.SequenceSink(plates, outputs, ctx, written, inputs, sign_frames=config.c2pa_frames), None
    tmp = stack.enter_context(atomic_path(Path(out)))
    if inp.kind in ("video", "sequence"):
        sink = _video_sink(tmp, inp, config, ctx)
        warnings.extend(inp.reader.notes() + sink.notes)  # rotation, deinterlacing, padding, streams left out
        return sink, tmp
    return ImageWriter(tmp), tmp


def _video_sink(tmp: Path, inp: _Input, config: ConvertConfig, ctx: policy.OutputContext) -> Any:
    """The video writer (with the input's sound), or for plates into a master the sink that
    composites them at their own precision."""
    from facedub.media.writer import VideoWriter

    reader = inp.reader
    audio = inp.kind == "video" and reader.has_audio
    # A trimmed render (a range of a video, written from time 0) takes the sound of its frames.
    window = _trimmed_audio_window(reader, inp.span) if audio and config.frame_range is not None else None
    sink: Any = VideoWriter(
        tmp,
        reader.width,
        reader.height,
        reader.fps,
        audio_from=inp.target if audio else None,
        crf=config.crf,
        preset=config.preset,
        audio_duration=None if config.max_frames is None or not audio else config.max_frames / reader.fps,
        metadata=ctx.writer_metadata(),
        threads=encoder_threads(reader.width, reader.height),
        timed=inp.kind == "video",  # each frame keeps its input timestamp (variable frame rate, audio sync)
        codec=config.codec,
        bits=16 if inp.seq_in else 8,  # FFV1 from plates: 16-bit RGB, no 8-bit step
        audio_window=window,
    )
    if inp.seq_in and config.codec != "h264":  # a master from plates: composited at their precision, no 8-bit step
        sink = sequence_out.VideoMasterSink(sequence_out.SequencePlates(reader), ctx, sink)
    return sink


def _check_counts(inp: _Input, config: ConvertConfig, counts: dict[str, int]) -> list[str]:
    """BadInput when nothing was read or no face swapped; a chunk without the person is a note."""
    target = inp.target
    if counts["frames"] == 0:
        raise BadInput(f"{target}: no frames could be read")
    if counts["swapped"] == 0 and not (inp.span is not None and config.frame_range is not None):
        raise BadInput(f"{target}: no face of the target person found in any of the {counts['frames']} frames")
    if counts["swapped"] == 0:  # a chunk of a shot may lie where the person is not: written unchanged, a render farm's job goes on
        return [f"{target}: no face of the target person in frames {inp.span.write[0]}-{inp.span.write[1]}; they were written unchanged (apart from the marks)"]
    return []


def _after_run_notes(meta: dict[str, Any], config: ConvertConfig, counts: dict[str, int]) -> list[str]:
    notes = []
    if target_descriptor(meta, config.reverse) is None:
        notes.append(
            "the model stores no descriptor of the target person, so faces were not checked for identity: "
            "the only face in a frame (or the largest of several) was swapped, whoever it was; retrain to store one"
        )
    if counts["no_face"]:
        notes.append(f"{counts['no_face']} of {counts['frames']} frames had no face of the target person and were copied unchanged")
    return notes


def _summary(inp: _Input, out: str | os.PathLike[str], outputs: "sequence_out.SequenceOutputs | None", counts: dict[str, int], seconds: float,
             smoother: Smoother, pipe: _Pipeline, phases: dict[str, float], warnings: list[str], runner: Runner) -> ConvertSummary:
    reader, kind = inp.reader, inp.kind
    jr, js = smoother.jitter.result()
    return ConvertSummary(
        output=str(outputs.out) if outputs is not None else str(out),
        kind="sequence" if outputs is not None else ("video" if kind == "sequence" else kind),
        frames=counts["frames"],
        swapped=counts["swapped"],
        bridged=counts["bridged"],
        no_face=counts["no_face"],
        width=reader.width,
        height=reader.height,
        fps=inp.fps,
        audio=bool(kind == "video" and reader.has_audio and outputs is None),
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
    runner: Runner,
    meta: dict[str, Any],
    config: ConvertConfig,
    smoother: Smoother,
    sink: Any,
    reporter: Reporter,
    total: int,
    counts: dict[str, int],
    identity: Callable[[], Any] | None,
    ctx: policy.OutputContext,
    occ: "occ_mod.OcclusionModel | None" = None,
    span: "sequence_out.Span | None" = None,
    on_paste: Callable[[PasteRecord], None] | None = None,
) -> None:
    """Run the stages of :class:`_Stages` as threads and follow their progress here."""
    st = _Stages(pipe, reader, det, runner, meta, config, smoother, sink, counts, identity, ctx, occ, span, on_paste)
    # The model is the costly stage: the other threads run at a lower priority so that, on a
    # busy CPU, the model's threads get the cores first and the cheap stages fill the gaps.
    nice = config.nice
    pipe.spawn("decode", st.decode, nice)
    pipe.spawn("detect", st.detect, nice)
    pipe.spawn("batch", st.batches, nice)
    for k in range(st.workers):
        pipe.spawn(f"model{k}", st.model_worker)
    pipe.spawn("blend", st.composite, nice)
    pipe.spawn("encode", st.encode, nice)
    _follow(pipe, st.q_done, reporter, total, counts)


def _follow(pipe: _Pipeline, q_done: "queue.Queue[Any]", reporter: Reporter, total: int, counts: dict[str, int]) -> None:
    """Count the frames as the encoder finishes them, report progress, stop on request."""
    reporter.start("convert", total=total or None, unit="frame")
    t_start = time.perf_counter()
    try:
        for done in pipe.items(q_done):
            if done is None:  # read only to warm the filters up
                reporter.advance(1)
                continue
            swapped, bridged, cut = done
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


class _Stages:
    """The pipeline's stages, one method per thread, joined by the queues made here::

        decode ─q_dec▶ detect ─q_det▶ batches ─q_batch▶ model_worker × N ─q_inf▶ composite ─q_out▶ encode ─q_done▶

    Each stage reads its input queue to the end marker, passes the marker on, and adds the
    seconds it worked to ``pipe.busy``."""

    def __init__(self, pipe: _Pipeline, reader: Any, det: Any, runner: Runner, meta: dict[str, Any], config: ConvertConfig, smoother: Smoother,
                 sink: Any, counts: dict[str, int], identity: Callable[[], Any] | None, ctx: policy.OutputContext,
                 occ: "occ_mod.OcclusionModel | None", span: "sequence_out.Span | None", on_paste: Callable[[PasteRecord], None] | None) -> None:
        self.pipe, self.reader, self.det, self.runner, self.config = pipe, reader, det, runner, config
        self.smoother, self.sink, self.counts, self.ctx, self.occ, self.span, self.on_paste = smoother, sink, counts, ctx, occ, span, on_paste
        self.workers, self.threads = model_parallelism(config, runner.device.type, available_cores())
        self.q_dec, self.q_det, self.q_out = pipe.queue(), pipe.queue(), pipe.queue()
        # Batches waiting for a model worker, and finished batches (in any order) for the blender.
        self.q_batch, self.q_inf = pipe.queue(self.workers), pipe.queue(finished_batches(self.workers, config.batch))
        self.q_done: "queue.Queue[Any]" = queue.Queue(maxsize=1024)
        self.chooser = TargetChooser(target_descriptor(meta, config.reverse), config, identity)
        self.cuts = None if config.cut_threshold is None or reader.kind not in ("video", "sequence") else CutDetector(config.cut_threshold)
        self.layered = bool(getattr(sink, "wants_layers", False))  # an image-sequence sink composites at the plate's precision
        # A trimmed video render (a range of a video into a video) starts at time 0.
        self.shift_times = span is not None and reader.kind == "video" and config.frame_range is not None and not self.layered
        self.origin: list[float] = []

    # -- decode ------------------------------------------------------------------------------
    def decode(self) -> None:
        pipe, reader, span = self.pipe, self.reader, self.span
        threads = decoder_threads(reader.width, reader.height)
        if span is not None and reader.kind == "video":  # by frame index, from a seek before the warm-up
            it = iter(reader.frames_between(span.read[0], span.read[1], threads=threads))
        else:
            it = iter(reader.frames(limit=self.config.max_frames, threads=threads))
        while True:
            t = time.perf_counter()
            try:
                f = next(it)
            except StopIteration:
                break
            pipe.add_busy("decode", time.perf_counter() - t)
            pipe.put(self.q_dec, _Item(f.index, f.time, f.rgb))
        pipe.put(self.q_dec, _END)

    # -- detect: cuts, faces, which one is the target ------------------------------------------
    def detect(self) -> None:
        pipe, chooser = self.pipe, self.chooser
        for item in pipe.items(self.q_dec):
            t = time.perf_counter()
            if self.cuts is not None and self.cuts.update(item.rgb):
                self._new_shot(item)
            t_det = time.perf_counter()
            faces = self.det.detect(item.rgb)
            t_id = time.perf_counter()
            id_before = chooser.seconds
            face = chooser.choose(item.rgb, faces, item.index if self.span is not None else None)
            if face is not None:
                item.lm = np.asarray(face.landmarks68, dtype=np.float64)
            pipe.add_busy("cuts", t_det - t)
            pipe.add_busy("detect", t_id - t_det + (time.perf_counter() - t_id) - (chooser.seconds - id_before))
            pipe.add_busy("identity", chooser.seconds - id_before)
            pipe.put(self.q_det, item)
        self.counts["identity_checks"] = chooser.descriptor_calls
        pipe.put(self.q_det, _END)

    def _new_shot(self, item: _Item) -> None:
        """A new shot: nothing tracked in the last one carries over."""
        item.cut = True
        self.chooser.reset()
        reset = getattr(self.det, "reset", None)
        if callable(reset):
            reset()

    # -- batches: bridge dropouts, smooth, align, group into model batches ----------------------
    def batches(self) -> None:
        bridger = Bridger(self.config.max_gap)
        self._pending: list[_Item] = []
        self._seq = 0
        for item in self.pipe.items(self.q_det):
            self._prepare(bridger.push(item))
        self._prepare(bridger.flush())
        self._flush()
        for _ in range(self.workers):
            self.pipe.put(self.q_batch, _END)

    def _flush(self) -> None:
        if self._pending:
            self.pipe.put(self.q_batch, (self._seq, list(self._pending)))
            self._seq += 1
        self._pending.clear()

    def _prepare(self, items: list[_Item]) -> None:
        config, span, runner, occ = self.config, self.span, self.runner, self.occ
        t = time.perf_counter()
        for it in items:
            if it.lm is None or it.cut:
                self.smoother.reset()  # a dropout or a new shot: the filter starts afresh
            if it.lm is not None:
                it.lm_s = self.smoother(it)
                if span is None or span.models(it.index):  # a sequence's warm-up: the landmark filter only
                    it.x, it.align, it.m = model_input(it.rgb, it.lm_s, runner.coverage, runner.size)
                    if occ is not None:
                        it.occ_x, it.occ_m = occ.inputs(it.rgb, it.align)
            self._pending.append(it)
            if span is not None and span.batch_ends(it.index):
                self._flush()  # batches on fixed frame numbers: a chunk's batches are the whole run's
        self.pipe.add_busy("align", time.perf_counter() - t)
        pending = self._pending
        if span is None and (sum(1 for it in pending if it.x is not None) >= config.batch or len(pending) >= 2 * config.batch):
            self._flush()

    # -- model workers -----------------------------------------------------------------------
    def model_worker(self) -> None:
        import torch

        torch.set_num_threads(self.threads)  # this thread's own setting; the caller's is untouched
        for seq, items in self.pipe.items(self.q_batch):
            faces = [it for it in items if it.x is not None]
            if faces:
                self._swap_faces(faces)
                if self.occ is not None:
                    self._find_hidden(faces)
            self.pipe.put(self.q_inf, (seq, items))
        self.pipe.put(self.q_inf, _END)

    def _swap_faces(self, faces: list[_Item]) -> None:
        t = time.perf_counter()
        batch = self.config.batch
        for start in range(0, len(faces), batch):
            chunk = faces[start : start + batch]
            rgb, masks = self.runner(np.stack([it.x for it in chunk]))
            for k, it in enumerate(chunk):
                it.face = rgb[k]
                it.face_mask = None if masks is None else masks[k]
        self.pipe.add_busy("model", time.perf_counter() - t)

    def _find_hidden(self, faces: list[_Item]) -> None:
        t = time.perf_counter()
        batch = self.config.batch
        for start in range(0, len(faces), batch):
            chunk = faces[start : start + batch]
            vis = self.occ(np.stack([it.occ_x for it in chunk]))
            for k, it in enumerate(chunk):
                it.visible = vis[k]
        self.pipe.add_busy("occlusion", time.perf_counter() - t)

    def in_order(self) -> Iterable[_Item]:
        """Items of the finished batches in frame order (workers may finish out of order)."""
        held: dict[int, list[_Item]] = {}
        wanted, ended = 0, 0
        while ended < self.workers:
            got = self.pipe.get(self.q_inf)
            if got is _END:
                ended += 1
                continue
            held[got[0]] = got[1]
            while wanted in held:
                yield from held.pop(wanted)
                wanted += 1
        if held:
            raise RuntimeError(f"convert: batches {sorted(held)} were finished but batch {wanted} never was")

    # -- composite: paste, mark --------------------------------------------------------------
    def composite(self) -> None:
        comp = Compositor(self.config, self.runner.size)
        comp.layers = self.layered
        comp.record = self.on_paste is not None  # keeps the paste mask; the pixels are the same
        for it in self.in_order():
            t = time.perf_counter()
            self._paste(comp, it)
            it.rgb = it.x = it.face = it.face_mask = it.occ_x = it.visible = None  # type: ignore[assignment]
            self.pipe.add_busy("blend", time.perf_counter() - t)
            self.pipe.put(self.q_out, it)
        self.pipe.put(self.q_out, _END)

    def _paste(self, comp: Compositor, it: _Item) -> None:
        """Paste ``it``'s face into its frame and set ``it.out``: the marked frame, the layers an
        image sequence composites, or None for a frame that is read but not written."""
        # The plate before the paste (the watermark hides in its texture, strongest in the face).
        plate = it.rgb.copy() if it.face is not None and it.rgb.flags.writeable else it.rgb
        frame = it.rgb if it.rgb.flags.writeable else it.rgb.copy()
        if it.cut:
            comp.reset()  # colour statistics of the last shot's face do not carry over
        it.swapped = it.face is not None
        if it.face is not None:
            comp.paste(frame, it.face, it.face_mask, it.x, it.lm_s, it.m, it.align, it.visible, it.occ_m)
        else:
            comp.reset()
        if self.on_paste is not None:
            pasted = comp.last_mask if it.face is not None else None
            self.on_paste(PasteRecord(
                it.index, it.time, None if pasted is None else pasted[0], None if pasted is None else pasted[1],
                it.lm_s if it.face is not None else None, plate, frame,
            ))
        if self.span is not None and not self.span.writes(it.index):
            it.out = None  # a warm-up or look-ahead frame: read for the filters, not written
        elif self.layered:
            it.out = sequence_out.Layers(it.index, plate, it.lm_s if it.swapped else None, comp.last_paste if it.swapped else None)
        else:
            it.out = policy.mark_frame(frame, self.ctx, it.lm_s if it.face is not None else None, plate)

    # -- encode ------------------------------------------------------------------------------
    def encode(self) -> None:
        pipe, origin = self.pipe, self.origin
        for it in pipe.items(self.q_out):
            if it.out is None:
                pipe.put(self.q_done, None)
                continue
            t = time.perf_counter()
            if self.shift_times and not origin:
                origin.append(it.time)
            self.sink.write(it.out, it.time - origin[0] if self.shift_times else it.time)
            pipe.add_busy("encode", time.perf_counter() - t)
            pipe.put(self.q_done, (it.swapped, it.bridged, it.cut))
        pipe.put(self.q_done, _END)


# ---------------------------------------------------------------------------------------
# Preview: one frame, before | after
# ---------------------------------------------------------------------------------------
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
) -> tuple[np.ndarray, bool, tuple[Region, np.ndarray, np.ndarray | None] | None]:
    """:func:`convert_frame`, plus the paste mask it used ((ROI, mask, hidden face) or ``None``)."""
    config = config or ConvertConfig()
    occ = occlusion_model(config, model)
    loaded = load_convert_model(model, config.device)
    runner = Runner(loaded, config.reverse, config.precision, config.detail)
    det = detector if detector is not None else _make_detector(video_mode=False)
    try:
        faces = det.detect(rgb)
    finally:
        if detector is None:
            _close(det)
    face = TargetChooser(target_descriptor(model_meta(loaded), config.reverse), config, identity).choose(rgb, faces)
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
    comp = Compositor(config, runner.size)
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
    reader = open_single(target)
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
    meta = model_meta(loaded)
    ctx = policy.begin_output(target, meta, settings=asdict(config), visible_label=config.visible_label, reporter=reporter, preview=(before, frame))
    after, found, pasted = _swap_frame(before, loaded, config, detector=detector, identity=identity)
    if not found:
        reporter.note(f"{target}: no face of the target person in frame {frame}; the preview shows it unchanged")
    from facedub.fileio import atomic_path

    with atomic_path(out_png, ".png") as tmp:
        from PIL import Image

        pair = policy.mark_frame(np.concatenate([before, after, mask_overlay(before, pasted)], axis=1), ctx)
        Image.fromarray(pair).save(tmp, format="PNG", compress_level=1)
        policy.finalize_output(tmp, ctx, final_path=out_png)
    reporter.image(str(out_png), f"preview of frame {frame} (before | after | mask)")
    return PreviewResult(str(out_png), frame, found, time.perf_counter() - t0)
