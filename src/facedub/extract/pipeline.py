"""The extract stage: videos / images → an aligned, filtered, single-identity faceset.

Work is pipelined so both CPU cores stay busy: a thread decodes frames (PyAV releases the
GIL), the calling thread detects and aligns faces (mediapipe and OpenCV release it too), and
a small thread pool encodes the PNG crops. The 128-d identity descriptor (~100 ms) is
computed only for the first face of each track and then every ``descriptor_every`` faces.

Safety of the output: crops are written (atomically) before the ``faceset.json`` that names
them, and ``faceset.json`` is rewritten atomically at checkpoints, at the end of every
source, on Ctrl-C / cancel and on a bad input part-way. Each source records the last frame
it finished (``done_until``), so running the same command again resumes where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facedub import __version__
from facedub.errors import BadInput, Cancelled
from facedub.extract.config import LANDMARK_METHOD, ExtractConfig
from facedub.extract.filters import BlurLimit, blur_limit, reject_reason, sharpness, sharpness_at
from facedub.extract.summary import ExtractSummary
from facedub.faces.align import CROP_SIZE, align_matrix, invert_affine, scale_of, transform_points, warp
from facedub.faceset.schema import FaceRecord, Faceset, SourceRecord
from facedub.faceset.store import FACES_DIR, faceset_exists, load_faceset, orphan_crops, save_faceset
from facedub.fileio import atomic_path, sha256_file
from facedub.progress import NullReporter, Reporter
from facedub.safety import policy

_SENTINEL = object()
_MAX_PENDING_WRITES = 64


@dataclass
class _Track:
    """A face followed through a video (or one face of an image)."""

    faces: int = 0  # faces seen (passing the size/score/blur filters)
    descriptors: list[np.ndarray] = field(default_factory=list)
    accepted: bool | None = None  # reference mode: does it match the reference?

    def mean(self) -> np.ndarray | None:
        return np.mean(self.descriptors, axis=0) if self.descriptors else None


@dataclass
class _Run:
    """Mutable state of one extraction run."""

    out: Path
    config: ExtractConfig
    reporter: Reporter
    sources: list[SourceRecord]
    old_faces: list[FaceRecord]  # faces already in the faceset before this run
    removed: tuple[str, ...]
    created: str
    consent: dict[str, Any] | None
    reference: np.ndarray | None  # descriptor new faces must match (None: cluster at the end)
    settings: dict[str, Any]
    new_faces: list[FaceRecord] = field(default_factory=list)
    tracks: dict[int, _Track] = field(default_factory=dict)
    next_track: int = 0
    rejected: Counter = field(default_factory=Counter)
    frames_read: int = 0
    frames_with_face: int = 0
    faces_found: int = 0
    pending: list[Future] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    identities: int = 1
    dropped_files: set[str] = field(default_factory=set)
    keep: set[int] | None = None  # tracks of this run that stay (None: all)
    sticky: bool = False  # the reference is the person already in the faceset
    old_files: set[str] = field(default_factory=set)
    encoder: Any = None  # IdentityEncoder, made on first use
    image_detector: Any = None  # one still-image FaceDetector shared by all image sources
    blur_scores: dict[str, float] = field(default_factory=dict)  # relative blur filter: crop file → sharpness at 64 px
    blurry: set[str] = field(default_factory=set)  # crops of this run below the relative blur limit
    blur: BlurLimit | None = None  # that limit, as last computed
    saved: Faceset | None = None  # what this run last wrote to faceset.json

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        self.reporter.note(msg)


# --------------------------------------------------------------------------------------------
# entry point


def extract_faceset(
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: ExtractConfig = ExtractConfig(),
    reporter: Reporter | None = None,
) -> ExtractSummary:
    """Extract aligned faces of one person from ``inputs`` into the faceset folder ``out``.

    Resumes an unfinished extraction into the same folder. Raises BadInput (one line naming
    the file) for unusable inputs or output, Cancelled when the reporter asks to stop; in
    every case what was already extracted stays a valid faceset.
    """
    from facedub.media.reader import expand_inputs, open_media

    reporter = reporter or NullReporter()
    t0 = time.perf_counter()
    if not inputs:
        raise BadInput("extract: no input given")
    files = expand_inputs(list(inputs))
    out = Path(out)
    # Every check before anything is created on disk: the output path, each input opened,
    # the content gate, the consent record and whether it may be bound to this faceset.
    from facedub.outputs import check_output

    check_output(out, kind="faceset", inputs=[*inputs, *files, config.reference, config.consent], create_parents=True)
    readers = [open_media(f) for f in files]  # every input checked before any work
    # The single safety decision point: content gate on every input, consent record validated.
    # The gate runs one thread; meanwhile another imports the detection and identity libraries
    # (mediapipe alone takes 2-3 s: it pulls in matplotlib). Nothing is made or written there.
    preload = threading.Thread(target=_preload, daemon=True, name="facedub-preload")
    preload.start()
    try:
        policy.check_inputs(files, reporter)
    except BaseException:
        preload.join()  # no import left half-way at exit
        raise
    consent = policy.consent_for_faceset(config.consent) if config.consent else None

    existing = load_faceset(out) if faceset_exists(out) else None
    pending_consent = _consent_to_bind(out, existing, consent, config.consent)
    reference, ref_sha = (None, None)
    if config.reference:
        reference, ref_sha = _reference_descriptor(Path(config.reference))
    if pending_consent is not None and reference is not None and existing is not None and existing.faces:
        _check_reference_matches(out, existing, reference, config)
    created = _prepare_output(out)
    try:
        return _extract_into(out, files, readers, config, reporter, existing, consent, pending_consent, reference, ref_sha, t0)
    except BaseException:
        _undo_created(out, created)
        raise


def _extract_into(out, files, readers, config, reporter, existing, consent, pending_consent, reference, ref_sha, t0):  # noqa: ANN001, ANN202
    settings = _settings(config, ref_sha)
    run = _Run(
        out=out,
        config=config,
        reporter=reporter,
        sources=list(existing.sources) if existing else [],
        old_faces=list(existing.faces) if existing else [],
        removed=existing.removed if existing else (),
        created=(existing.created if existing and existing.created else _now()),
        # A record for a faceset that has faces but no record waits until this run has kept
        # faces of the person already there (see _consent_to_bind).
        consent=(existing.consent if existing else None) if pending_consent is not None else consent,
        reference=reference,
        settings=settings,
    )
    if reference is None and run.old_faces:
        descs = [f.descriptor_array() for f in run.old_faces if f.descriptor is not None]
        if descs:
            run.reference = np.mean(descs, axis=0)
            run.sticky = True
    if run.old_faces:
        run.next_track = max(f.track for f in run.old_faces) + 1
        run.old_files = {f.file for f in run.old_faces}

    (out / FACES_DIR).mkdir(exist_ok=True)
    skipped = 0
    processed = 0
    errors: list[BadInput] = []
    empty_sources: list[str] = []
    with ThreadPoolExecutor(max_workers=config.writers, thread_name_prefix="facedub-png") as pool:
        try:
            n_images = sum(1 for r in readers if r.kind != "video")
            images_started = False
            for i, (path, reader) in enumerate(zip(files, readers)):
                if reader.kind != "video" and not images_started:
                    reporter.start(f"extract {n_images} image(s)", total=n_images, unit="image")
                    images_started = True
                elif reader.kind == "video":
                    images_started = False
                sha = sha256_file(path)
                idx = _source_index(run, path, sha, reader)
                src = run.sources[idx]
                if src.complete and src.done_until >= 0:
                    skipped += 1
                    if reader.kind != "video":
                        reporter.advance(1)
                    continue
                processed += 1
                before = len(run.new_faces)
                try:
                    # The last source's own checkpoint would be rewritten at once by the final one.
                    _process_source(run, idx, reader, pool, checkpoint=i < len(files) - 1)
                except BadInput as e:
                    errors.append(e)
                    if len(files) > 1:
                        reporter.note(f"error: {e} (going on with the other inputs)")
                    continue
                for msg in reader.notes() + reader.problems:  # rotation, deinterlacing, frames skipped as corrupt
                    run.note(msg)
                if len(run.new_faces) == before:
                    empty_sources.append(str(path))
        except (KeyboardInterrupt, Cancelled):
            _checkpoint(run, final=False)
            raise
        finally:
            if run.image_detector is not None:
                run.image_detector.close()
        _checkpoint(run, final=True)
    _remove_orphans(run)

    total = len(run.old_faces) + len(_kept_faces(run))
    if total == 0:
        if errors:
            raise errors[0]
        names = ", ".join(str(f) for f in files[:3]) + (" …" if len(files) > 3 else "")
        why = _why_no_faces(run)
        raise BadInput(f"{names}: no usable faces found{why}")
    for name in empty_sources:
        if len(files) > 1:
            run.note(f"{name}: no usable faces found")
    if run.sticky and run.rejected.get("other_person"):
        run.note(
            f"left out {run.rejected['other_person']} faces that are not the person already in {out}; "
            "extract into a new folder to collect someone else"
        )
    if pending_consent is not None:
        if not _kept_faces(run):
            raise BadInput(
                f"{config.consent}: not bound to {out}: no face in these inputs was kept as the person already "
                f"in the faceset, so the record cannot be shown to be theirs; extract their footage with it, or "
                f"use 'facedub consent rebind {out} --consent {config.consent} --reason TEXT'"
            )
        run.consent = pending_consent
        save_faceset(_build_faceset(run, final=True), run.out)
        _log_binding(out, None, pending_consent)
    elif consent is not None and (existing is None or existing.consent is None):
        _log_binding(out, None, consent)
    if errors:
        raise BadInput(f"{errors[0]} (the faceset {out} is valid and holds {total} faces)" + (f"; {len(errors) - 1} more bad input(s), see above" if len(errors) > 1 else ""))
    faceset = _build_faceset(run, final=True)
    reporter.finish()
    return ExtractSummary(
        faceset=str(out),
        faceset_id=faceset.id,
        sources=processed,
        sources_skipped=skipped,
        frames_read=run.frames_read,
        frames_with_face=run.frames_with_face,
        faces_found=run.faces_found,
        faces_kept=len(_kept_faces(run)),
        faces_total=len(faceset.faces),
        rejected={k: int(v) for k, v in sorted(run.rejected.items())},
        identities=run.identities,
        seconds=time.perf_counter() - t0,
        notes=tuple(run.notes),
    )


# --------------------------------------------------------------------------------------------
# set-up helpers


def _preload() -> None:
    """Import what extraction will need; a failure here shows where the library is used."""
    try:
        import dlib  # noqa: F401

        import mediapipe  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _prepare_output(out: Path) -> list[Path]:
    """Create the faceset folder and faces/; return the folders this made (to undo on refusal)."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: output exists and is not a folder")
    created = [q for q in (out / FACES_DIR, out, *out.parents) if not q.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / FACES_DIR).mkdir(exist_ok=True)
        probe = out / f".fd-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        reason = e.strerror or str(e)
        _undo_created(out, created)
        raise BadInput(f"{out}: cannot write the faceset here ({reason})") from None
    return created


def _undo_created(out: Path, created: list[Path]) -> None:
    """After a refusal: remove the folders this run made, when no faceset was written in them."""
    if not created or faceset_exists(out):
        return
    import shutil

    if out in created:
        shutil.rmtree(out, ignore_errors=True)  # only this run's crops are in it
    for q in created:  # faces/, then the parents made for it (each only when empty)
        try:
            q.rmdir()
        except OSError:
            pass


def _consent_to_bind(out: Path, existing: Faceset | None, consent: dict[str, Any] | None, path: str | None) -> dict[str, Any] | None:
    """The binding rules for ``extract --consent`` on an existing faceset (checked before any work).

    * a new or empty faceset takes the record (returns None: bound as usual);
    * the same record again: nothing to do (None);
    * a faceset carrying ANOTHER record: refused — replacing a record is only done on purpose,
      with ``facedub consent rebind``, which records who, when and why;
    * a faceset with faces but no record: the record is returned as *pending*; it is bound
      only if this run keeps faces that match the person already there (the same identity
      test that keeps one person per faceset).
    """
    if consent is None or existing is None:
        return None
    old = existing.consent
    if old is not None:
        if old.get("id") == consent.get("id"):
            return None
        raise BadInput(
            f"{path}: {out} already carries consent record {old.get('id')} for {old.get('subject')!r}; "
            f"a faceset's record is replaced only on purpose: 'facedub consent rebind {out} --consent {path} --reason TEXT'"
        )
    return consent if existing.faces else None


def _check_reference_matches(out: Path, existing: Faceset, reference: np.ndarray, config: ExtractConfig) -> None:
    descs = [f.descriptor_array() for f in existing.faces if f.descriptor is not None]
    if not descs:
        return
    d = float(np.linalg.norm(np.mean(descs, axis=0) - reference))
    if d >= config.match_distance:
        raise BadInput(
            f"{config.consent}: not bound to {out}: the faces already there are not the person in "
            f"{config.reference} (identity distance {d:.2f}, limit {config.match_distance})"
        )


def _log_binding(out: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    from facedub.safety.consent import append_history

    append_history(out, "bind", old, new, "extract --consent")


def _reference_descriptor(path: Path) -> tuple[np.ndarray, str]:
    from facedub.faces.detect import FaceDetector
    from facedub.faces.identity import IdentityEncoder
    from facedub.media.reader import load_image

    rgb = load_image(path)
    with FaceDetector(video_mode=False, max_faces=4, min_score=0.5) as det:
        faces = det.detect(rgb)
    if not faces:
        raise BadInput(f"{path}: no face found in the reference image")
    return IdentityEncoder().descriptor(rgb, faces[0].landmarks68), sha256_file(path)


def _settings(config: ExtractConfig, ref_sha: str | None) -> dict[str, Any]:
    return {
        "every": config.every,
        "min_size": config.min_size,
        "blur_threshold": config.blur_threshold,  # None: relative to the faceset (blur_mads, blur_ratio)
        **({"blur_mads": config.blur_mads, "blur_ratio": config.blur_ratio} if config.blur_threshold is None else {}),
        "min_score": config.min_score,
        "max_faces": config.max_faces,
        "descriptor_every": config.descriptor_every,
        "detect_every": config.detect_every,
        "match_distance": config.match_distance,
        "reference_sha256": ref_sha,
        "landmarks": LANDMARK_METHOD,
        "crop_size": CROP_SIZE,
    }


def faceset_id(sources: Sequence[SourceRecord], settings: dict[str, Any]) -> str:
    """Stable id from the sources' hashes and the settings that shape the crops."""
    key = {"sources": sorted({s.sha256 for s in sources}), "settings": settings}
    return "fs-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _source_index(run: _Run, path: Path, sha: str, reader: Any) -> int:
    for i, s in enumerate(run.sources):
        if s.sha256 == sha:
            return i
    kind = "video" if reader.kind == "video" else "image"
    run.sources.append(
        SourceRecord(
            path=str(path.resolve()),
            sha256=sha,
            kind=kind,
            frames=None,
            fps=reader.fps if kind == "video" else None,
            width=reader.width,
            height=reader.height,
            done_until=-1,
            complete=False,
        )
    )
    return len(run.sources) - 1


# --------------------------------------------------------------------------------------------
# per source


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put ``item`` on ``q``, waiting while it is full; False when told to stop first."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decode_thread(reader: Any, start: int, every: int, limit: int | None, q: queue.Queue, stop: threading.Event) -> None:
    try:
        for frame in reader.frames(start=start, every=every, limit=limit):
            if not _put(q, frame, stop):
                return
        _put(q, _SENTINEL, stop)
    except BaseException as e:  # handed to the main thread
        _put(q, e, stop)


def _detect_thread(det: Any, frames: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
    """Frames from the decoder → (frame, faces), in order. Its own thread so that detection
    (mediapipe, which releases the GIL while it works) overlaps the main thread's per-face
    work (alignment, pose, identity, bookkeeping); the end marker and errors pass through."""
    try:
        while not stop.is_set():
            try:
                item = frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _SENTINEL or isinstance(item, BaseException):
                _put(out, item, stop)
                return
            if not _put(out, (item, det.detect(item.rgb)), stop):
                return
    except BaseException as e:  # handed to the main thread
        _put(out, e, stop)


def _drain(q: queue.Queue, threads: list[threading.Thread]) -> None:
    """Empty ``q`` until ``threads`` have ended (they may wait to put on it)."""
    while any(t.is_alive() for t in threads):
        try:
            q.get(timeout=0.05)
        except queue.Empty:
            pass


def _process_source(run: _Run, idx: int, reader: Any, pool: ThreadPoolExecutor, checkpoint: bool = True) -> None:
    from facedub.faces.detect import FaceDetector

    cfg = run.config
    src = run.sources[idx]
    is_video = src.kind == "video"
    start = src.done_until + 1
    every = cfg.every if is_video else 1
    expected = None
    if reader.frame_count:
        remaining = max(0, reader.frame_count - start)
        expected = (remaining + every - 1) // every
        if cfg.max_frames is not None:
            expected = min(expected, cfg.max_frames)
    name = Path(src.path).name
    if is_video:
        run.reporter.start(f"extract {name}", total=expected, unit="frame")
    if start > 0:
        run.reporter.note(f"{name}: resuming after frame {src.done_until}")

    q: queue.Queue = queue.Queue(maxsize=8)
    detected: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    th = threading.Thread(target=_decode_thread, args=(reader, start, every, cfg.max_frames, q, stop), daemon=True, name="facedub-decode")
    th.start()
    th_det = None
    try:
        if is_video:
            det = FaceDetector(video_mode=True, max_faces=cfg.max_faces, min_score=cfg.min_score, detect_every=cfg.detect_every)
        else:
            if run.image_detector is None:
                run.image_detector = FaceDetector(video_mode=False, max_faces=cfg.max_faces, min_score=cfg.min_score)
            det = run.image_detector
        th_det = threading.Thread(target=_detect_thread, args=(det, q, detected, stop), daemon=True, name="facedub-detect")
        th_det.start()
    except BaseException:
        stop.set()
        _drain(q, [th])
        raise
    track_map: dict[int, int] = {}  # detector track → faceset track
    last_done = src.done_until
    frames_here = 0
    finished = False
    t_src = time.perf_counter()
    t_ckpt = time.perf_counter()
    ckpt_every = cfg.checkpoint_seconds
    try:
        while True:
            if run.reporter.should_stop():
                raise Cancelled("extraction stopped; the faceset keeps what was done")
            item = detected.get()
            if item is _SENTINEL:
                finished = True
                break
            if isinstance(item, BaseException):
                raise item
            frame, faces = item
            run.frames_read += 1
            frames_here += 1
            if faces:
                run.frames_with_face += 1
            for k, face in enumerate(faces):
                _handle_face(run, idx, frame, k, face, track_map, is_video, pool)
            last_done = frame.index
            run.sources[idx] = replace(run.sources[idx], done_until=last_done)
            el = time.perf_counter() - t_src
            run.reporter.advance(1, kept=len(run.new_faces), fps=round(frames_here / el, 1) if el > 0 else 0.0)
            if time.perf_counter() - t_ckpt > ckpt_every:
                t_write = time.perf_counter()
                _checkpoint(run, final=False)
                t_ckpt = time.perf_counter()
                # faceset.json grows with the faceset: keep its rewrites under ~5 % of the time
                if cfg.checkpoint_seconds > 0:
                    ckpt_every = max(cfg.checkpoint_seconds, 20 * (t_ckpt - t_write))
    finally:
        stop.set()
        _drain(detected, [th_det])  # the detector first: it may still be meshing a frame
        _drain(q, [th])  # unblock the decoder if it waits on a full queue
        if is_video:
            det.close()
        run.sources[idx] = replace(run.sources[idx], done_until=last_done)
    # The whole source is done unless a frame limit stopped it early.
    complete = finished and (cfg.max_frames is None or frames_here < cfg.max_frames)
    frames_total = (last_done + 1) if (finished and complete and is_video) else run.sources[idx].frames
    if not is_video:
        frames_total = 1
    run.sources[idx] = replace(run.sources[idx], complete=complete, frames=frames_total)
    if checkpoint:
        _checkpoint(run, final=False)


def _descriptor(run: _Run, rgb: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    if run.encoder is None:
        from facedub.faces.identity import IdentityEncoder

        run.encoder = IdentityEncoder()
    return run.encoder.descriptor(rgb, landmarks68)


def _handle_face(run: _Run, idx: int, frame: Any, k: int, face: Any, track_map: dict[int, int], is_video: bool, pool: ThreadPoolExecutor) -> None:
    from facedub.faces.identity import estimate_pose, face_distance

    cfg = run.config
    src = run.sources[idx]
    run.faces_found += 1
    file = f"{FACES_DIR}/{src.sha256[:12]}_f{frame.index:07d}_{k}.png"
    if file in run.removed:
        run.rejected["removed_by_hand"] += 1
        return
    if file in run.old_files:
        run.rejected["already_present"] += 1
        return
    reason = reject_reason(face.size, face.score, None, cfg)
    if reason:
        run.rejected[reason] += 1
        return
    m = align_matrix(face.points5)
    crop = _warp_crop(frame.rgb, m)
    sharp = sharpness(crop)
    reason = reject_reason(face.size, face.score, sharp, cfg)
    if reason:
        run.rejected[reason] += 1
        return

    # Track bookkeeping and identity.
    if is_video and face.track >= 0:
        if face.track not in track_map:
            track_map[face.track] = _new_track(run)
        tid = track_map[face.track]
    else:
        tid = _new_track(run)
    tr = run.tracks[tid]
    descriptor = None
    if tr.faces % cfg.descriptor_every == 0:
        descriptor = _descriptor(run, frame.rgb, face.landmarks68)
        if run.reference is not None:
            tr.accepted = face_distance(descriptor, run.reference) < cfg.match_distance
        else:
            mean = tr.mean()
            if mean is not None and face_distance(descriptor, mean) >= cfg.match_distance:
                # The tracker jumped to someone else: start a new track from here.
                tid = _new_track(run)
                track_map[face.track] = tid
                tr = run.tracks[tid]
        tr.descriptors.append(descriptor)
    tr.faces += 1
    if run.reference is not None and tr.accepted is False:
        run.rejected["other_person"] += 1
        return

    pose = estimate_pose(face.landmarks68, frame.rgb.shape[1], frame.rgb.shape[0])
    rec = FaceRecord(
        file=file,
        source=idx,
        frame=frame.index,
        time=round(float(frame.time), 4),
        bbox=tuple(round(float(v), 2) for v in face.bbox),
        landmarks=tuple((round(float(x), 2), round(float(y), 2)) for x, y in face.landmarks68),
        affine=tuple(tuple(float(v) for v in row) for row in m),
        det_score=round(float(face.score), 4),
        sharpness=round(sharp, 2),
        descriptor=None if descriptor is None else tuple(round(float(v), 6) for v in descriptor),
        pose=tuple(round(v, 2) for v in pose),
        track=tid,
    )
    _submit_png(run, pool, run.out / file, crop)
    run.new_faces.append(rec)
    if cfg.blur_threshold is None:
        run.blur_scores[file] = sharpness_at(crop)


def _new_track(run: _Run) -> int:
    tid = run.next_track
    run.next_track += 1
    run.tracks[tid] = _Track()
    return tid


# Frames up to this many pixels are warped as 4 channels (see _warp_to_crop).
_RGBA_WARP_MAX_PIXELS = 600_000


def _warp_to_crop(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    """:func:`facedub.faces.align.warp` to the crop, the same pixels, faster on small frames:
    OpenCV's bilinear warp has a vectorised path for 4 channels and not for 3, so the frame
    goes through RGBA (512² frame: 0.52 ms with both conversions vs 1.07 ms, bit-identical).
    Converting costs ~1 ns a frame pixel, so large frames are warped as they are."""
    import cv2

    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or img.shape[0] * img.shape[1] > _RGBA_WARP_MAX_PIXELS:
        return warp(img, m, CROP_SIZE)
    out = cv2.warpAffine(cv2.cvtColor(img, cv2.COLOR_RGB2RGBA), np.asarray(m, dtype=np.float64), (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return cv2.cvtColor(out, cv2.COLOR_RGBA2RGB)


def _warp_crop(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Aligned crop; big faces are shrunk with area averaging first to avoid aliasing."""
    import cv2

    s = scale_of(m)
    if s >= 0.5:
        return _warp_to_crop(rgb, m)
    # Cut the region the crop covers, shrink it to ~1.5× crop resolution, warp the rest.
    corners = transform_points(np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE], [CROP_SIZE, CROP_SIZE]], float), invert_affine(m))
    h, w = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return warp(rgb, m, CROP_SIZE)
    f = min(1.0, s * 1.5)
    region = rgb[y0:y1, x0:x1]
    small = cv2.resize(region, (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))), interpolation=cv2.INTER_AREA)
    fx, fy = small.shape[1] / (x1 - x0), small.shape[0] / (y1 - y0)
    to_small = np.array([[fx, 0.0, -x0 * fx], [0.0, fy, -y0 * fy]])
    m2 = np.asarray(m, float) @ np.vstack([invert_affine(to_small), [0, 0, 1]])
    return _warp_to_crop(small, m2)


def _submit_png(run: _Run, pool: ThreadPoolExecutor, path: Path, crop: np.ndarray) -> None:
    if len(run.pending) >= _MAX_PENDING_WRITES:
        _wait_writes(run, keep=_MAX_PENDING_WRITES // 2)
    run.pending.append(pool.submit(_write_crop, path, crop, run.config.png_compress))


def _png_params(level: int) -> list[int]:
    """OpenCV PNG settings for a zlib ``level``.

    One fixed row filter instead of libpng's adaptive choice, which tries all five filters on
    every row and costs more than the compression at the fast levels. Measured on 256² crops
    of the 512² clip: level 1 Huffman-only with Paeth 3.4–3.6 ms a crop and 93.6 KiB, against
    4.5–6.1 ms and 93.2 KiB adaptive; level 0 stores the pixels unfiltered (0.3 ms, 193 KiB;
    adaptive filtering there took 2.4 ms for nothing). Above level 1 the adaptive filters stay.
    """
    import cv2

    params = [cv2.IMWRITE_PNG_COMPRESSION, int(level)]
    if level <= 0:
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    elif level == 1:
        params += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]
    return params


def _write_crop(path: Path, rgb: np.ndarray, level: int) -> None:
    """PNG-encode with OpenCV (GIL released; see _png_params) and write atomically. No fsync
    per crop: faceset.json, which is synced, is written only after its crops are on disk."""
    import cv2

    params = _png_params(level)
    # cvtColor swaps the channels without the GIL (numpy's strided copy holds it: 0.5 vs 0.1 ms)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"PNG encoding failed for {path.name}")
    with atomic_path(path, ".png") as tmp:
        with open(tmp, "wb") as f:
            f.write(buf.tobytes())


def _wait_writes(run: _Run, keep: int = 0) -> None:
    while len(run.pending) > keep:
        fut = run.pending.pop(0)
        try:
            fut.result()
        except BadInput:
            raise  # already one line naming the file (facedub.fileio)
        except OSError as e:
            raise BadInput(f"{run.out}: cannot write a face crop ({e.strerror or e})") from None


# --------------------------------------------------------------------------------------------
# identity decision, checkpoints


def _decide_identity(run: _Run, final: bool) -> set[int]:
    """Tracks (of this run) whose faces stay. Reference mode: decided per track already."""
    from facedub.faces.identity import cluster

    tids = sorted({f.track for f in run.new_faces if f.file not in run.blurry})
    if run.reference is not None or len(tids) <= 1:
        return set(tids)
    means = [run.tracks[t].mean() for t in tids]
    counts = np.array([sum(1 for f in run.new_faces if f.track == t) for t in tids], dtype=float)
    have = [i for i, mu in enumerate(means) if mu is not None]
    if not have:
        return set(tids)
    labels = cluster(np.array([means[i] for i in have]), threshold=run.config.match_distance, weights=counts[have])
    keep = {tids[i] for i, lab in zip(have, labels) if lab == 0}
    if final:
        n_ids = int(labels.max()) + 1
        run.identities = n_ids
        if n_ids > 1:
            kept = int(sum(counts[i] for i, lab in zip(have, labels) if lab == 0))
            dropped = int(counts.sum()) - kept
            run.note(
                f"found {n_ids} different people; kept the one seen most ({kept} faces) and dropped "
                f"{dropped} faces of the others. Use --reference IMAGE to choose the person."
            )
    return keep


def _kept_faces(run: _Run) -> list[FaceRecord]:
    faces = run.new_faces if run.keep is None else [f for f in run.new_faces if f.track in run.keep]
    return [f for f in faces if f.file not in run.blurry] if run.blurry else faces


def _judge_blur(run: _Run, final: bool) -> None:
    """Relative blur filter: the faces of this run far below their own sharpness spread go."""
    if run.config.blur_threshold is not None or not run.blur_scores:
        return
    run.blur = blur_limit(list(run.blur_scores.values()), run.config)
    run.blurry = {f for f, v in run.blur_scores.items() if v < run.blur.limit}
    if final and run.blurry:
        n = len(run.blurry)
        run.rejected["blurry"] += n
        run.note(f"left out {n} blurry face(s) of {len(run.blur_scores)}: {run.blur.describe()}; --blur-threshold X sets an absolute limit instead (0 keeps all)")


def _build_faceset(run: _Run, final: bool) -> Faceset:
    faces = run.old_faces + _kept_faces(run)
    return Faceset(
        id=faceset_id(run.sources, run.settings),
        sources=tuple(run.sources),
        faces=tuple(faces),
        crop_size=CROP_SIZE,
        settings=dict(run.settings),
        consent=run.consent,
        removed=run.removed,
        created=run.created,
        tool_version=__version__,
    )


def _checkpoint(run: _Run, final: bool) -> None:
    """Wait for the crops, decide who stays, write faceset.json atomically."""
    _wait_writes(run)
    _judge_blur(run, final)  # first: a blurred face must not pass for another person
    keep = _decide_identity(run, final)
    run.keep = keep
    if final:
        dropped = [f for f in run.new_faces if f.track not in keep and f.file not in run.blurry]
        if dropped:
            run.rejected["other_person"] += len(dropped)
            run.dropped_files.update(f.file for f in dropped)
    faces_total = len(run.old_faces) + len(_kept_faces(run))
    if faces_total == 0 and not run.old_faces:
        return  # nothing worth a faceset.json yet
    try:
        faceset = _build_faceset(run, final)
        save_faceset(faceset, run.out)
        run.saved = faceset
    except BadInput:
        raise
    except OSError as e:
        raise BadInput(f"{run.out}: cannot write faceset.json ({e.strerror or e})") from None


def _remove_orphans(run: _Run) -> None:
    if not faceset_exists(run.out):
        return
    fs = run.saved if run.saved is not None else load_faceset(run.out)  # what faceset.json now names
    for p in orphan_crops(fs, run.out):
        try:
            p.unlink()
        except OSError:
            pass


def _why_no_faces(run: _Run) -> str:
    if run.frames_read == 0:
        return " (no frames read)"
    if run.faces_found == 0:
        return f" ({run.frames_read} frames looked at, no face detected)"
    parts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(run.rejected.items()) if v)
    return f" ({run.faces_found} faces detected in {run.frames_read} frames, all rejected: {parts})"
