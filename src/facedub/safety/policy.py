"""The single decision point of facedub's safety rules. Stages call these inside their functions.

================================  ==========================================================
extract (before reading frames)   ``check_inputs(inputs, reporter)``
extract ``--consent FILE``        ``consent_for_faceset(path)`` → dict for ``Faceset.consent``
train (before any step)           ``require_consent_for_training(src, tgt)`` → dict for
                                  ``model.json["consent"]``
convert / preview (before work)   ``begin_output(target, model_meta, ...)`` → OutputContext
dataset real clip (before work)   ``begin_pristine(clip, consent_ids, ...)`` → OutputContext
convert (every output frame)      ``mark_frame(rgb, ctx, face, plate)``
convert (finished file)           ``finalize_output(tmp_path, ctx, final_path)``
================================  ==========================================================

Nothing here reads a flag, an environment variable or a config key that could switch a check
off. The only choice a caller has is ``visible_label`` (the corner "AI-generated" label, for
film work); the watermark, tags, manifest and C2PA (in every format c2pa-python can bind: not an FFV1
.mkv, whose manifest's sha256 stands in for it) are always applied, and
:func:`finalize_output` refuses to finish a file whose frames were never marked.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from facedub.errors import BadInput, ConsentMissing, ContentRefused
from facedub.progress import NullReporter, Reporter
from facedub.safety import consent as consent_mod
from facedub.safety import content_gate as gate
from facedub.safety import provenance as prov
from facedub.safety.label import Labeler
from facedub.safety.watermark import Watermarker

GATE = gate.GateConfig()  # the one content-gate configuration (documented in content_gate)


# ----------------------------------------------------------------------------------------
# Content gate


def check_inputs(
    paths: list[str | os.PathLike[str]] | tuple | str | os.PathLike[str],
    reporter: Reporter | None = None,
    classifier: gate.Classifier | None = None,
) -> list[gate.GateReport]:
    """Run the content gate on every input (files or folders of images).

    Raises ContentRefused naming the file and the timestamps when one is refused; returns the
    reports otherwise (their ``max_score`` is worth logging). Inside :func:`one_gate_per_run`
    a file the gate has already passed in this run is not scanned again, but only when it is
    the identical file (see :class:`_Scanned`).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    reporter = reporter or NullReporter()
    memo = _RUN_VERDICTS.get()
    if memo is None or classifier is not None:  # a caller's own classifier: always scan
        reports = gate.scan_paths(list(paths), classifier, GATE, reporter)
    else:
        reports = []
        files = gate.iter_input_files(list(paths))
        earlier = [_reuse(memo, f) for f in files]
        if any(e is None for e in earlier):
            reporter.start("content check", None, "sample")
        for f, done in zip(files, earlier):
            if done is not None:
                reporter.note(f"{f}: content check passed earlier in this run (same file, same SHA-256); not scanned again")
                reports.append(done)
                continue
            before = _Scanned.of(f)
            r = gate.scan_file(f, None, GATE, reporter, reporter.should_stop)
            if not r.refused and before is not None and before.unchanged(f):
                memo[before.key] = (before, r)
            reports.append(r)
        if any(e is None for e in earlier):
            reporter.finish()
    for r in reports:
        if r.refused:
            raise ContentRefused(r.reason())
    return reports


@dataclass(frozen=True)
class _Scanned:
    """What identifies the file the gate looked at: resolved path, size, mtime and the
    SHA-256 of its bytes (everything the gate decoded came from those bytes)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.path, self.size, self.mtime_ns)

    def unchanged(self, path: Path) -> bool:
        """Same size and mtime as when hashed (checked after the scan: not modified meanwhile)."""
        try:
            st = path.stat()
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)

    @classmethod
    def of(cls, path: Path) -> "_Scanned | None":
        from facedub.fileio import sha256_file

        try:
            st = path.stat()
            digest = sha256_file(path)
            if path.stat().st_mtime_ns != st.st_mtime_ns:
                return None  # changing while hashed: never reused
        except OSError:
            return None
        return cls(str(path.resolve()), st.st_size, st.st_mtime_ns, digest)


def _reuse(memo: dict, path: Path) -> gate.GateReport | None:
    """The verdict of an earlier scan of this identical file in this run, if any."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return None
    hit = memo.get(key)
    if hit is None:
        return None
    scanned, report = hit
    now = _Scanned.of(path)
    return report if now == scanned else None


_RUN_VERDICTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("facedub_gate_verdicts", default=None)


@contextlib.contextmanager
def one_gate_per_run() -> Iterator[None]:
    """Within this block (one ``facedub swap`` run) each input file is scanned by the content
    gate once: later stages (extract, convert) reuse the passing verdict for the identical
    file — same path, size, mtime and SHA-256 of its bytes. A changed file is scanned again;
    a refusal is never stored (it raises at once). Nothing outside the block is affected."""
    token = _RUN_VERDICTS.set({})
    try:
        yield
    finally:
        _RUN_VERDICTS.reset(token)


def check_image(rgb: np.ndarray, name: str, classifier: gate.Classifier | None = None) -> gate.GateReport:
    """Content gate on one in-memory image (convert previews, UI uploads)."""
    r = gate.scan_image(rgb, name, classifier, GATE)
    if r.refused:
        raise ContentRefused(r.reason())
    return r


# ----------------------------------------------------------------------------------------
# Consent


def consent_for_faceset(path: str | os.PathLike[str], now: dt.datetime | None = None) -> dict[str, Any]:
    """Load and validate a consent file for ``extract --consent``; the dict to store in the faceset."""
    rec = consent_mod.load_consent(path)
    consent_mod.check_valid(rec, now, where=str(path))
    return rec.to_dict()


def _faceset_consent(fs: Any, role: str) -> tuple[str, Any]:
    """(name for messages, consent dict or None) from a Faceset, a faceset dict, or a folder/JSON path."""
    if isinstance(fs, (str, os.PathLike)):
        p = Path(fs)
        j = p / "faceset.json" if p.is_dir() else p
        try:
            d = json.loads(j.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"{p}: not a faceset (no faceset.json)") from None
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise BadInput(f"{j}: unreadable faceset ({e})") from None
        return str(p), d.get("consent") if isinstance(d, dict) else None
    if isinstance(fs, Mapping):
        return f"{role} faceset {fs.get('id', '?')}", fs.get("consent")
    return f"{role} faceset {getattr(fs, 'id', '?')}", getattr(fs, "consent", None)


def require_consent_for_training(source_faceset: Any, target_faceset: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """Both facesets must carry a valid, unexpired consent record.

    Returns ``{"source": record, "target": record}``: store it as ``model.json["consent"]`` so
    the model carries both records (and :func:`require_consent_for_convert` can re-check them).
    """
    out: dict[str, Any] = {}
    for role, fs in (("source", source_faceset), ("target", target_faceset)):
        name, rec = _faceset_consent(fs, role)
        if rec is None:
            raise ConsentMissing(
                f"{name}: the {role} faceset has no consent record; create one with 'facedub consent create' "
                f"and bind it with 'facedub extract ... --consent FILE'"
            )
        out[role] = consent_mod.check_valid(rec, now, where=name).to_dict()
    return out


def require_consent_for_convert(model_meta: Mapping[str, Any] | None, now: dt.datetime | None = None, name: str = "model") -> None:
    """The model must carry both consent records, still valid (not expired) now."""
    meta = model_meta or {}
    c = meta.get("consent")
    if not isinstance(c, Mapping) or not all(isinstance(c.get(r), Mapping) for r in ("source", "target")):
        raise ConsentMissing(f"{name}: carries no consent records for its source and target identities (trained without them?)")
    for role in ("source", "target"):
        consent_mod.check_valid(c[role], now, where=f"{name} ({role} identity)")


# ----------------------------------------------------------------------------------------
# Outputs


class OutputContext:
    """What one output needs: its provenance info, the watermarker and the label."""

    def __init__(self, info: prov.OutputInfo) -> None:
        self.info = info
        self.watermarker = Watermarker(info.output_id, pristine=info.pristine)
        self.labeler = Labeler() if info.visible_label else None
        self._lock = threading.Lock()
        self.frames_marked = 0

    @property
    def output_id(self) -> str:
        return self.info.output_id

    def writer_metadata(self) -> dict[str, str]:
        """Container tags to hand to VideoWriter(metadata=...) (finalize adds them anyway)."""
        return prov.tags_for(self.info)


def begin_output(
    target: str | os.PathLike[str],
    model_meta: Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None = None,
    visible_label: bool = True,
    reporter: Reporter | None = None,
    preview: tuple[np.ndarray, int] | None = None,
    classifier: gate.Classifier | None = None,
    now: dt.datetime | None = None,
    output_id: str | None = None,
    frames: Callable[[], list[tuple[int, float, np.ndarray]]] | None = None,
) -> OutputContext:
    """Every check a conversion needs, before any work; returns the context for marking.

    Consent of both identities (re-checks expiry), then the content gate on the target: the
    whole file, or only the previewed frame when ``preview=(rgb, frame_index)``, or for an
    image sequence the frames ``frames()`` returns ((frame number, seconds, RGB uint8) each;
    the target is then the sequence's first file). ``output_id``: the id to mark with (an
    image-sequence render derives it from the job, so its chunks share it); default a new one.
    """
    require_consent_for_convert(model_meta, now)
    if frames is not None:
        check_frames(frames(), str(target), reporter, classifier)
    elif preview is None:
        check_inputs([target], reporter, classifier)
    else:
        rgb, index = preview
        check_image(rgb, f"{target} (frame {index})", classifier)
    return OutputContext(prov.output_info([target], model_meta, settings, visible_label, output_id=output_id))


def check_frames(
    frames: list[tuple[int, float, np.ndarray]], name: str, reporter: Reporter | None = None, classifier: gate.Classifier | None = None
) -> gate.GateReport:
    """Content gate on sampled frames of one input held in memory (an image sequence)."""
    reporter = reporter or NullReporter()
    classifier = classifier or gate.default_classifier()
    reporter.start("content check", len(frames), "sample")
    samples = []
    for n, t, rgb in frames:
        samples.append(gate.score_sample(rgb, classifier, GATE, time=t, frame=n))
        reporter.advance(1)
    reporter.finish()
    r = gate.GateReport(name, tuple(samples), gate.decide(samples, GATE), GATE)
    if r.refused:
        raise ContentRefused(r.reason())
    return r


def begin_pristine(
    clip: str | os.PathLike[str],
    consent_ids: tuple[str, ...],
    settings: Mapping[str, Any] | None = None,
) -> OutputContext:
    """The context for a dataset's real clip: ``clip`` re-encoded unaltered, its watermark's
    payload saying "pristine" (same scheme and strength as a swap's), tags and a manifest that
    say so, no visible label and no C2PA claim of AI generation. The caller has checked the
    identity's consent (``consent_ids``) and the content gate has seen ``clip``."""
    if not consent_ids:
        raise ConsentMissing(f"{clip}: a dataset's real clip needs the consent record of the person in it")
    meta = {"consent_ids": list(consent_ids)}
    return OutputContext(prov.output_info([clip], meta, settings, visible_label=False, pristine=True))


def mark_frame(rgb: np.ndarray, ctx: OutputContext, face: np.ndarray | None = None, plate: np.ndarray | None = None,
               pasted: np.ndarray | None = None) -> np.ndarray:
    """Visible label (unless switched off) then the invisible watermark; returns a new frame.

    ``face``: landmarks (frame pixels) of the face pasted into this frame, and ``plate``: the
    frame before the paste. Both optional; with them the watermark puts its energy in the face
    and shapes the rest by the plate's own texture (see ``watermark.Watermarker.embed``).
    ``pasted``: the cells that get the face's share, given directly (a dataset's real clip
    takes them from its swapped twin, so both carry the mark at the same strength).
    """
    out = ctx.labeler.apply(rgb) if ctx.labeler is not None else rgb
    if plate is not None and ctx.labeler is not None:
        plate = ctx.labeler.apply(plate)  # the label is part of the picture the mark hides in
    out = ctx.watermarker.embed(np.ascontiguousarray(out), face, None if plate is None else np.ascontiguousarray(plate), pasted)
    with ctx._lock:
        ctx.frames_marked += 1
    return out


def finalize_output(path: str | os.PathLike[str], ctx: OutputContext, final_path: str | os.PathLike[str] | None = None) -> Path:
    """Tags, C2PA and the manifest for a finished file; returns the manifest path.

    ``path`` may be a temporary name (it is rewritten in place); ``final_path`` is the name
    the file will have (the manifest goes beside it and names it). Raises when no frame of
    this output went through :func:`mark_frame`.
    """
    path = Path(path)
    final = Path(final_path) if final_path is not None else path
    if ctx.frames_marked == 0:
        raise RuntimeError(f"{final}: refusing to finish an output whose frames were never watermarked")
    suffix = final.suffix.lower()
    if not path.is_file():
        raise BadInput(f"{path}: output file not found")
    tags = prov.read_tags(path) if suffix in prov.TAGGED_VIDEO_SUFFIXES else {}
    if tags.get(prov.TAG_ID) != ctx.output_id:
        prov.write_tags(path, ctx.info, suffix)
    # C2PA here declares AI-generated media: not for an unaltered clip; Matroska has no binding.
    if not ctx.info.pristine and prov.c2pa_binds(final):
        prov.sign_c2pa(path, ctx.info, title=final.name, suffix=suffix)
    from facedub.fileio import sha256_file

    return prov.write_manifest(final, ctx.info, sha256_file(path))
