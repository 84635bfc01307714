"""What each UI button runs: builds a stage config from the form and calls ONE stage function.

No pipeline logic lives here: these are the same calls the CLI makes (see
docs/CONTRACTS.md), wrapped as job functions ``fn(reporter) -> dict`` for
:class:`facedub.ui.jobs.JobManager`. Stage modules are imported inside the job so the page
loads fast and a stage that fails to import becomes a plain message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from facedub.errors import BadInput
from facedub.project import Project, check_role

JobFn = Callable[[Any], "dict[str, Any] | None"]


def _to_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return obj
    return {"value": str(obj)}


def _config(cls: type, **values: Any) -> Any:
    """Build a frozen config dataclass from the fields it actually has (forms may offer more)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})


# --- choices for the dropdowns ---------------------------------------------------------
def choices() -> dict[str, tuple[str, ...]]:
    """Choice sets from the stages' ``Literal`` types (``typing.get_args``)."""
    from typing import get_args

    out: dict[str, tuple[str, ...]] = {}
    try:
        from facedub.convert import config as cc

        out["mask"] = get_args(cc.MaskMode)
        out["color"] = get_args(cc.ColorMode)
        out["blend"] = get_args(cc.BlendMode)
    except ImportError:
        out.update(mask=("learned-hull",), color=("reinhard",), blend=("alpha",))
    try:
        from facedub.model.registry import ArchName

        out["arch"] = get_args(ArchName)
    except ImportError:
        out["arch"] = ("lite",)
    return out


# --- consent ---------------------------------------------------------------------------
def record_consent(
    project: Project,
    role: str,
    subject: str,
    granted_by: str,
    scope: str,
    expires: str | None,
    evidence: str | None,
    synthetic: bool,
) -> dict[str, Any]:
    """Create a consent record with the safety package and store it as consent/ROLE.json."""
    from facedub.safety.consent import create_consent, save_consent

    check_role(role)
    subject = (subject or "").strip()
    granted_by = (granted_by or "").strip() or subject
    if not subject:
        raise BadInput("consent: say whose face this is (subject)")
    if not (scope or "").strip():
        raise BadInput("consent: describe what the consent covers (scope)")
    record = create_consent(
        subject=subject,
        granted_by=granted_by,
        scope=scope,
        expires=(str(expires).strip() or None) if expires else None,
        evidence=evidence or None,
        synthetic=bool(synthetic),
    )
    out = project.consent_path(role)
    from facedub.outputs import check_output

    check_output(out, inputs=[evidence], create_parents=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = None
    if evidence:
        # Gradio's upload cache is purged and is the one folder browsers may fetch: the
        # evidence is copied beside the record (consent/ROLE.evidence/), where it stays private.
        from facedub.safety.consent import keep_evidence

        kept = keep_evidence(record, out, evidence)
    save_consent(record, out)
    _drop_old_evidence(out, kept)
    return record.to_dict()


def _drop_old_evidence(record_path: Path, kept: Path | None) -> None:
    """Remove evidence of a record this one replaced (the folder holds one record's evidence)."""
    from facedub.safety.consent import EVIDENCE_SUFFIX

    folder = record_path.parent / f"{record_path.stem}{EVIDENCE_SUFFIX}"
    if not folder.is_dir():
        return
    for f in folder.iterdir():
        if f.is_file() and (kept is None or f.name != kept.name):
            f.unlink(missing_ok=True)


# --- jobs --------------------------------------------------------------------------------
def extract_job(project: Project, role: str, every: int = 1, max_frames: int | None = None) -> JobFn:
    check_role(role)
    inputs = list(project.input_files(role))
    if not inputs:
        raise BadInput(f"{role}: choose the {role} video(s) first")
    consent = project.consent_path(role)
    _check_output(project, project.faceset_dir(role), "faceset", [*inputs, consent])

    def run(reporter: Any) -> dict[str, Any]:
        from facedub.extract import ExtractConfig, extract_faceset

        cfg = _config(
            ExtractConfig,
            every=max(1, int(every or 1)),
            max_frames=int(max_frames) if max_frames else None,
            consent=str(consent) if consent.is_file() else None,
        )
        summary = extract_faceset(inputs, project.faceset_dir(role), cfg, reporter)
        return _to_dict(summary)

    return run


def train_job(
    project: Project, arch: str, steps: int | None, batch_size: int | None, resume: bool,
    preview_every: int | None = None, minutes: float | None = None,
) -> JobFn:
    """Train (or, when ``resume`` and a model exists, continue) the project's model."""
    for role in ("source", "target"):
        if not (project.faceset_dir(role) / "faceset.json").is_file():
            raise BadInput(f"{role}: extract the {role} faces first")
    cont = bool(resume) and project.has_model()
    _check_output(project, project.model_dir, "model", [project.faceset_dir("source"), project.faceset_dir("target")])

    def run(reporter: Any) -> dict[str, Any]:
        from facedub.train import TrainConfig, train

        cfg = _config(
            TrainConfig,
            source=str(project.faceset_dir("source")),
            target=str(project.faceset_dir("target")),
            out=str(project.model_dir),
            arch=None if cont else arch,
            steps=int(steps) if steps else None,
            minutes=float(minutes) if minutes else None,
            batch_size=int(batch_size) if batch_size else None,
            preview_every=int(preview_every) if preview_every else None,
            resume=cont,
        )
        result = _to_dict(train(cfg, reporter))
        if result.get("stopped"):
            reporter.note(f"stopped at step {result.get('step')}; the model is saved — start training again to continue")
        return result

    return run


def _target_video(project: Project) -> str:
    files = project.input_files("target")
    if not files:
        raise BadInput("target: choose the target video first")
    return files[0]


def convert_settings(
    mask: str,
    color: str,
    blend: str,
    erode: int | None = None,
    feather: int | None = None,
    forehead: float | None = None,
    sharpen: float | None = None,
) -> Any:
    from facedub.convert.config import ConvertConfig

    return _config(ConvertConfig, mask=mask, color=color, blend=blend, erode=erode, feather=feather, forehead=forehead, sharpen=sharpen)


def _check_output(project: Project, out: Path, kind: str, inputs: list[Any]) -> None:
    """The CLI's output guard, run when the button is pressed (before the job starts)."""
    from facedub.outputs import check_output
    from facedub.project import check_input_path

    for role in ("source", "target"):
        for f in project.input_files(role):
            check_input_path(project, f)  # a path recorded earlier may have become one of ours
    check_output(out, kind=kind, inputs=inputs, create_parents=True)  # type: ignore[arg-type]


def preview_job(project: Project, frame: int, settings: dict[str, Any]) -> JobFn:
    if not project.has_model():
        raise BadInput("train a model first")
    target = _target_video(project)
    _check_output(project, project.preview_path, "file", [target, project.model_dir])

    def run(reporter: Any) -> dict[str, Any]:
        from facedub.convert import convert_preview

        cfg = convert_settings(**settings)
        project.output_dir.mkdir(parents=True, exist_ok=True)
        res = convert_preview(target, str(project.model_dir), int(frame or 0), str(project.preview_path), cfg, reporter)
        return _to_dict(res)

    return run


def verify(path: str | Path) -> dict[str, Any]:
    from facedub.safety.verify import verify_file

    return _to_dict(verify_file(str(path)))


def convert_job(project: Project, settings: dict[str, Any]) -> JobFn:
    if not project.has_model():
        raise BadInput("train a model first")
    target = _target_video(project)
    _check_output(project, project.result_path, "file", [target, project.model_dir])

    def run(reporter: Any) -> dict[str, Any]:
        from facedub.convert import convert_video

        cfg = convert_settings(**settings)
        project.output_dir.mkdir(parents=True, exist_ok=True)
        summary = convert_video(target, str(project.model_dir), str(project.result_path), cfg, reporter)
        reporter.start("verify", None)
        report = verify(project.result_path)
        return {"convert": _to_dict(summary), "verify": report}

    return run


# --- the one-click swap ------------------------------------------------------------------
SWAP_STAGES: tuple[tuple[str, str], ...] = (
    ("check", "Check the inputs (consent, content)"),
    ("extract-source", "Extract the source faces"),
    ("extract-target", "Extract the target faces"),
    ("train", "Train the model"),
    ("convert", "Convert the video"),
    ("verify", "Verify the watermark"),
    ("eval", "Quality report"),
)


class SwapStages:
    """A reporter between ``run_swap`` and the job: forwards everything, and keeps a stage
    list (done / running / skipped, seconds each) in the job state from the phases and notes
    the stage functions report."""

    def __init__(self, rep: Any) -> None:
        import time as _time

        self._rep, self._time = rep, _time
        self.stages = [{"key": k, "name": n, "status": "waiting", "seconds": None} for k, n in SWAP_STAGES]
        self._current: str | None = None
        self._t0 = _time.monotonic()

    def _enter(self, key: str) -> None:
        if key == self._current:
            return
        keys = [s["key"] for s in self.stages]
        now = self._time.monotonic()
        for s in self.stages:
            if s["key"] == self._current:
                s["status"], s["seconds"] = "done", round(now - self._t0, 1)
        for s in self.stages[: keys.index(key)]:  # stages passed over were already done earlier
            if s["status"] == "waiting":
                s["status"] = "skipped"
        self._current, self._t0 = key, now
        self.stages[keys.index(key)]["status"] = "running"
        self._rep.set_field("stages", self.stages)

    def close(self, status: str) -> None:
        now = self._time.monotonic()
        for s in self.stages:
            if s["key"] == self._current:
                s["status"] = "done" if status == "done" else "stopped"
                s["seconds"] = round(now - self._t0, 1)
            elif status == "done" and s["status"] == "waiting":
                s["status"] = "skipped"
        self._rep.set_field("stages", self.stages)

    # Reporter protocol
    def start(self, phase: str, total: int | None = None, unit: str = "it") -> None:
        if self._rep.should_stop():  # a stop during training (which saves and returns) ends the chain here
            from facedub.errors import Cancelled

            raise Cancelled("stopped; the model is saved — press Continue to go on from it")
        ph = phase.lower()
        if ph.startswith("content check") and self._current in (None, "check"):
            self._enter("check")
        elif ph.startswith(("load faces", "train")):
            self._enter("train")
        elif ph.startswith("convert"):
            self._enter("convert")
        elif ph.startswith(("eval", "source identity")):
            if self._current == "convert":  # run_swap verifies between convert and eval
                self._enter("verify")
            self._enter("eval")
        self._rep.start(phase, total, unit)

    def note(self, message: str) -> None:
        m = str(message)
        if m.startswith("extract source"):
            self._enter("extract-source")
        elif m.startswith("extract target"):
            self._enter("extract-target")
        self._rep.note(message)

    def advance(self, n: int = 1, **metrics: Any) -> None:
        self._rep.advance(n, **metrics)

    def image(self, path: str, caption: str = "") -> None:
        self._rep.image(path, caption)

    def finish(self) -> None:
        self._rep.finish()

    def should_stop(self) -> bool:
        return self._rep.should_stop()


def swap_job(project: Project, minutes: float, arch: str = "auto", every: int = 1, max_frames: int | None = None) -> JobFn:
    """The whole chain as one job: the same :func:`facedub.swap.run_swap` as ``facedub swap``,
    on the project's chosen inputs and consent records, into ``output/result.mp4``. Running it
    again continues (extraction skips what is done, training spends what is left of the
    budget). The project's lock is held by the job, so run_swap does not take it again."""
    from facedub.swap import SwapConfig

    src = list(project.input_files("source"))
    if not src:
        raise BadInput("source: choose the source video(s) first")
    target = _target_video(project)
    for role in ("source", "target"):
        if not project.consent_path(role).is_file():
            raise BadInput(f"{role}: fill in and save the {role} consent first")
    if not minutes or float(minutes) <= 0:
        raise BadInput(f"time budget: give minutes of training (more than 0), not {minutes}")
    config = SwapConfig(
        source=tuple(src), target=target, out=str(project.result_path), project=str(project.root),
        minutes=float(minutes), arch=arch, every=max(1, int(every or 1)),
        max_frames=int(max_frames) if max_frames else None,
    )

    def run(reporter: Any) -> dict[str, Any]:
        from facedub.errors import Cancelled
        from facedub.swap import run_swap

        stages = SwapStages(reporter)
        stages._enter("check")
        try:
            summary = run_swap(config, stages, hold_lock=False)
        except Cancelled as e:
            was = stages._current
            stages.close("stopped")
            if was == "train":  # train's own message speaks of the CLI's --resume
                raise Cancelled("training stopped; the model is saved — press Continue to go on from it") from None
            raise Cancelled(str(e) or "stopped") from None
        except BaseException:
            stages.close("stopped")
            raise
        if reporter.should_stop():  # stopped after training: the model is saved, nothing converted since
            stages.close("stopped")
            raise Cancelled("stopped; press Continue to go on from the saved model")
        if stages._current == "convert":
            stages._enter("verify")
        stages.close("done")
        return {"swap": summary.to_dict(), "verify": summary.verify}

    return run
