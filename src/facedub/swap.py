"""The whole chain in one call: consent → extract both → train → convert → verify → eval.

Everything lands in a *project folder* (:mod:`facedub.project`), so running ``swap`` again
resumes: extraction skips what is already in the facesets, training continues the model until
the time budget is spent, and conversion is redone only when the model changed since the last
output. The stage functions do the work; this module only decides which ones still need to run.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from facedub.convert.config import ConvertConfig
from facedub.errors import BadInput, ConsentMissing
from facedub.fileio import write_json
from facedub.progress import NullReporter, Reporter
from facedub.train.config import DEFAULT_MINUTES

# "auto" picks `hd` when CUDA is available and `lite` on a CPU.
SwapArch = Literal["auto", "lite", "original", "hd", "saehd"]
SWAP_ARCHS: tuple[str, ...] = get_args(SwapArch)
STATE_JSON = "swap.json"


@dataclass(frozen=True)
class SwapConfig:
    source: tuple[str, ...]  # videos / images / folders of the identity whose face goes in
    target: str  # the video (or image) whose person's face is replaced
    out: str  # the output file (.mp4 for a video target, .png/.jpg for an image)
    project: str | None = None  # project folder (None: OUT's folder / "<OUT stem>.facedub")
    minutes: float = DEFAULT_MINUTES  # total training budget of the project, in minutes (a resume spends what is left)
    steps: int | None = None  # or: total training steps (overrides minutes; for tests and exact runs)
    arch: SwapArch = "auto"  # model architecture (see SwapArch)
    source_consent: str | None = None  # consent record (JSON) of the source identity
    target_consent: str | None = None  # consent record (JSON) of the target person
    every: int = 1  # extract every Nth frame of the inputs
    max_frames: int | None = None  # use only the first N frames of each input (tests, quick looks)
    convert: ConvertConfig = field(default_factory=ConvertConfig)  # mask / colour / blend settings
    visible_label: bool = True  # the visible "AI-generated" label (the invisible marks always stay)
    evaluate: bool = True  # run `eval` on the result
    eval_every: int = 5  # identity descriptors on every Nth frame during eval

    def __post_init__(self) -> None:
        if not self.source:
            raise BadInput("swap: --source needs at least one video or image")
        if self.arch not in SWAP_ARCHS:
            raise BadInput(f"swap: --arch must be one of {', '.join(SWAP_ARCHS)}, got {self.arch!r}")
        if self.steps is None and not self.minutes > 0:
            raise BadInput(f"swap: --minutes must be more than 0, got {self.minutes}")
        if self.steps is not None and self.steps < 1:
            raise BadInput(f"swap: --steps must be at least 1, got {self.steps}")


@dataclass(frozen=True)
class SwapSummary:
    output: str
    project: str
    arch: str
    model_step: int
    train_minutes: float  # total training time of the model so far
    faces_source: int
    faces_target: int
    convert: dict[str, Any]
    verify: dict[str, Any]
    eval: dict[str, Any] | None
    eval_report: str | None
    skipped: tuple[str, ...] = ()  # stages that were already done and not run again
    verdict: dict[str, Any] | None = None  # the eval's verdict with hints for this project (facedub.evaluate.verdict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"output: {self.output}", f"project: {self.project}"]
        out.append(
            f"model: {self.arch}, step {self.model_step}, {self.train_minutes:.1f} min of training; "
            f"faces: {self.faces_source} source, {self.faces_target} target"
        )
        c = self.convert
        if c:
            out.append(f"converted: {c.get('frames')} frames, {c.get('swapped')} swapped, {c.get('frames_per_second', 0):.1f} frames/s")
        v = self.verify
        out.append(
            "provenance: watermark "
            + ("found" if v.get("watermark", {}).get("found") else "NOT found")
            + f", output id {v.get('output_id')}, C2PA {v.get('c2pa', {}).get('validation_state') or 'none'}"
            + (", manifest beside the file" if v.get("manifest", {}).get("present") else "")
        )
        if self.eval:
            out.extend(quality_lines(self.eval, self.verdict))
        if self.eval_report:
            out.append(f"report: {self.eval_report}")
        if self.skipped:
            out.append(f"already done earlier: {', '.join(self.skipped)}")
        return out


def quality_lines(ev: dict[str, Any], verdict: dict[str, Any] | None = None) -> list[str]:
    """The verdict, the figures behind it and what to do next, from an eval summary dict."""
    v = verdict or ev.get("verdict") or {}

    def fig(value: Any, spec: str, suffix: str = "") -> str:
        return "–" if value is None else f"{value:{spec}}{suffix}"

    share = ev.get("source_share")
    figures = [
        f"reads as the source in {fig(None if share is None else 100 * share, '.0f', ' %')} of frames",
        f"sharpness {fig(ev.get('sharpness_ratio'), '.2f', '×')} the footage's",
        f"expression ratio {fig(ev.get('expression_error_ratio'), '.2f')}",
        f"paste edge {fig((ev.get('seam_delta_e') or {}).get('median'), '.1f', ' ΔE')}",
        f"jitter {fig(ev.get('landmark_jitter_ratio'), '.2f', '×')} the input's",
        f"background {fig((ev.get('background_psnr') or {}).get('mean'), '.1f', ' dB')}",
    ]
    out = [f"quality: {v.get('text', 'not judged')}", "  " + " · ".join(figures)]
    out.extend(f"  next: {h}" for h in v.get("hints", ()))
    return out


def default_project_dir(out: str | os.PathLike[str]) -> Path:
    o = Path(out)
    return o.parent / f"{o.stem}.facedub"


def choose_arch(arch: str) -> str:
    if arch != "auto":
        return arch
    import torch

    return "hd" if torch.cuda.is_available() else "lite"


def _bind_consent(project: Any, role: str, given: str | None) -> None:
    """Put the consent record for ``role`` into the project (copied from ``given`` when set)."""
    from facedub.safety.consent import check_valid, load_consent, save_consent

    dest = project.consent_path(role)
    if given:
        rec = load_consent(given)
        check_valid(rec, where=str(given))
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_consent(rec, dest)
        return
    if not dest.is_file():
        who = "source identity (the face put in)" if role == "source" else "target person (the face replaced)"
        raise ConsentMissing(
            f"{project.root}: no consent record for the {who}; pass --{role}-consent FILE "
            f"(make one with 'facedub consent create ... --out {role}-consent.json')"
        )
    check_valid(load_consent(dest), where=str(dest))


def _check_before_work(config: SwapConfig, out: Path, target: Path, sources: list[Path], pdir: Path, reporter: Reporter) -> None:
    """Every cheap check, before the project folder is made and before any extraction: the
    output and project paths, every input opened (an audio-only target fails here), the
    consent records (given, or already in the project) and the content gate on every input."""
    from facedub.media.reader import expand_inputs, open_media
    from facedub.outputs import check_output
    from facedub.safety import policy
    from facedub.safety.consent import check_valid, load_consent
    from facedub.safety.provenance import MANIFEST_SUFFIX

    for p in [*sources, target]:
        if not p.exists():
            raise BadInput(f"{p}: no such file")
    inputs = [*sources, target, config.source_consent, config.target_consent]
    check_output(config.out, inputs=inputs, derived=(MANIFEST_SUFFIX,), what="--out")
    check_output(pdir, kind="project", inputs=inputs, create_parents=True, what="--project")
    files = expand_inputs([*sources, target])
    for f in files:
        open_media(f)  # BadInput for anything unreadable, or without pictures (audio only)
    for role, given in (("source", config.source_consent), ("target", config.target_consent)):
        where = Path(given) if given else pdir / "consent" / f"{role}.json"
        if given or where.is_file():
            check_valid(load_consent(where), where=str(where))
        else:
            who = "source identity (the face put in)" if role == "source" else "target person (the face replaced)"
            raise ConsentMissing(
                f"{pdir}: no consent record for the {who}; pass --{role}-consent FILE "
                f"(make one with 'facedub consent create ... --out {role}-consent.json')"
            )
    policy.check_inputs(files, reporter)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _train_budget(config: SwapConfig, meta: dict[str, Any] | None) -> tuple[int | None, float | None]:
    """(steps, minutes) still to train, or (0, None) when the budget is spent."""
    done_steps = int(meta.get("step", 0)) if meta else 0
    done_s = float(meta.get("elapsed_s", 0.0)) if meta else 0.0
    if config.steps is not None:
        return max(0, config.steps - done_steps), None
    left = config.minutes - done_s / 60.0
    # Under 15 s left is not worth a resume (loading the data alone takes a few seconds).
    return (0, None) if left < 0.25 else (None, left)


def project_lock_for_swap(project_root: str | os.PathLike[str]) -> Any:
    """The project's one-job lock as ``facedub swap`` takes it (the web app's jobs take the same)."""
    from facedub.project_lock import ProjectLock

    return ProjectLock(project_root, f"swap-cli-{os.getpid()}", "facedub swap (command line)")


def run_swap(config: SwapConfig, reporter: Reporter | None = None, hold_lock: bool = True) -> SwapSummary:
    """Run (or resume) the whole chain. Raises the stages' own errors unchanged.

    With ``hold_lock`` the project's one-job lock is held from the moment the project folder
    exists to the end (:mod:`facedub.project_lock`); a web-app job, which holds it already,
    passes False. ProjectBusy (a BadInput) when another job runs in the project."""
    from facedub.project import create_project, open_project
    from facedub.safety.policy import one_gate_per_run

    reporter = reporter or NullReporter()
    out = Path(config.out).absolute()
    target = Path(config.target).absolute()
    sources = [Path(s).absolute() for s in config.source]
    pdir = Path(config.project) if config.project else default_project_dir(out)
    # The content gate scans each input once per run: extract and convert reuse the verdict of
    # the check below for the identical file (same path, size, mtime and SHA-256).
    with one_gate_per_run():
        _check_before_work(config, out, target, sources, pdir, reporter)

        project = open_project(pdir) if (pdir / "project.json").is_file() else create_project(pdir.parent, pdir.name)
        lock = project_lock_for_swap(project.root).acquire() if hold_lock else None
        try:
            return _run_in_project(config, reporter, project, out, target, sources)
        finally:
            if lock is not None:
                lock.release()


def _run_in_project(config: SwapConfig, reporter: Reporter, project: Any, out: Path, target: Path, sources: list[Path]) -> SwapSummary:
    from facedub.evaluate.core import EvalConfig, evaluate
    from facedub.extract import ExtractConfig, extract_faceset
    from facedub.faceset import load_faceset
    from facedub.model.checkpoint import read_meta
    from facedub.project import set_inputs
    from facedub.safety.verify import verify_file
    from facedub.train import TrainConfig, train
    from facedub.convert.pipeline import convert_video

    project = set_inputs(project, "source", [str(s) for s in sources])
    project = set_inputs(project, "target", [str(target)])
    reporter.note(f"project folder: {project.root}")

    _bind_consent(project, "source", config.source_consent)
    _bind_consent(project, "target", config.target_consent)

    state_path = project.root / STATE_JSON
    state = _read_state(state_path)
    skipped: list[str] = []

    # 1. extract both (each resumes by itself: already-extracted frames are skipped)
    for role, inputs in (("source", sources), ("target", [target])):
        reporter.note(f"extract {role}: {', '.join(str(p) for p in inputs)}")
        summary = extract_faceset(
            inputs,
            project.faceset_dir(role),
            ExtractConfig(every=config.every, max_frames=config.max_frames, consent=str(project.consent_path(role))),
            reporter,
        )
        for line in summary.lines():
            reporter.note(line)

    # 2. train within the budget
    arch = choose_arch(config.arch)
    meta = read_meta(project.model_dir) if project.has_model() else None
    if meta is not None and config.arch != "auto" and meta.get("arch") != arch:
        raise BadInput(
            f"{project.model_dir}: the project's model is {meta.get('arch')!r}, not {arch!r}; "
            "use another --project or the same --arch"
        )
    arch = meta.get("arch", arch) if meta else arch
    steps, minutes = _train_budget(config, meta)
    if steps == 0:
        skipped.append("train")
    else:
        reporter.note(f"train {arch}: " + (f"{steps} steps" if steps else f"{minutes:.1f} minutes"))
        train(
            TrainConfig(
                source=str(project.faceset_dir("source")),
                target=str(project.faceset_dir("target")),
                out=str(project.model_dir),
                arch=arch,
                steps=steps,
                minutes=minutes,
                resume=meta is not None,
                occlusion=config.convert.occlusion,  # what convert keeps in front of the face teaches no decoder either
                device=config.convert.device,  # one --device / --precision for both stages
                precision=config.convert.precision,
            ),
            reporter,
        )
    meta = read_meta(project.model_dir)

    # 3. convert, unless this exact model already produced this output with these settings
    settings = {
        "model_step": meta.get("step"),
        "model_id": meta.get("id") or meta.get("created"),
        "convert": asdict(config.convert),
        "visible_label": config.visible_label,
        "max_frames": config.max_frames,
        "target": str(target),
    }
    if out.is_file() and state.get("convert_settings") == settings and state.get("output") == str(out):
        skipped.append("convert")
        conv = state.get("convert", {})
    else:
        cc = replace(config.convert, max_frames=config.max_frames, visible_label=config.visible_label)
        conv = convert_video(target, project.model_dir, out, cc, reporter).to_dict()
        state.update(convert_settings=settings, output=str(out), convert=conv)
        write_json(state_path, state)

    # 4. verify
    report = verify_file(out)
    ver = report.to_dict()

    # 5. evaluate
    ev = None
    html = None
    verdict = None
    if config.evaluate and conv.get("kind", "video") == "video":
        html = str(project.output_dir / f"{out.stem}-report.html")
        er = evaluate(
            out,
            target,
            project.faceset_dir("source"),
            EvalConfig(every=config.eval_every, max_frames=config.max_frames, report_html=html),
            reporter,
        )
        ev = er.to_dict()["summary"]
        write_json(project.output_dir / f"{out.stem}-eval.json", er.to_dict())
        from facedub.evaluate.verdict import Training, judge_summary

        trained = Training(
            minutes=float(meta.get("elapsed_s", 0.0)) / 60.0,
            steps=int(meta.get("step", 0)),
            arch=str(meta.get("arch")),
            by_steps=config.steps is not None,
        )
        verdict = judge_summary(ev, training=trained).to_dict()

    fs_src = load_faceset(project.faceset_dir("source"))
    fs_tgt = load_faceset(project.faceset_dir("target"))
    summary = SwapSummary(
        output=str(out),
        project=str(project.root),
        arch=str(meta.get("arch")),
        model_step=int(meta.get("step", 0)),
        train_minutes=float(meta.get("elapsed_s", 0.0)) / 60.0,
        faces_source=len(fs_src.faces),
        faces_target=len(fs_tgt.faces),
        convert=conv,
        verify=ver,
        eval=ev,
        eval_report=html,
        skipped=tuple(skipped),
        verdict=verdict,
    )
    state.update(summary=summary.to_dict())
    write_json(state_path, state)
    return summary

