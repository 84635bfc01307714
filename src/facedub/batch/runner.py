"""Run the jobs of a job file, each with a resumable JSON state.

A job's stages are those of ``facedub swap`` (:mod:`facedub.swap`), called through the same
stage functions and config dataclasses: extract the source and the target (two independent
calls), train (one call, on one worker), convert (one call per target file; on a cluster, an
image-sequence target, or a video target written as an image sequence, is one call per frame
range, which convert renders exactly as in one run, warm-up included), verify, and evaluate. A job that names a trained ``model`` only converts
and verifies.

State: ``<state folder>/<job name>.json``, rewritten atomically after every stage (and every
finished conversion chunk). A rerun skips finished jobs and, in an unfinished one, the stages
already done with the same settings; extraction and training resume by themselves as in
``facedub swap``. A failing job records its one-line error and exit code; the others go on.
Only the driver writes state files; workers write the stages' own outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from facedub.batch.cluster import Call, Executor, LocalExecutor
from facedub.batch.jobs import Job, JobError, JobFile
from facedub.errors import BadInput, FacedubError
from facedub.fileio import write_json
from facedub.progress import NullReporter, Reporter

STATE_TYPE = "facedub.batch.job"
VERSION = 1


def default_state_dir(jobs_path: str | os.PathLike[str]) -> Path:
    p = Path(jobs_path)
    return p.parent / f"{p.stem}.state"


@dataclass(frozen=True)
class JobResult:
    name: str
    status: str  # done / failed
    exit_code: int  # 0 when done
    error: str | None = None
    output: str | None = None
    skipped: tuple[str, ...] = ()  # stages already done by an earlier run
    seconds: float = 0.0
    state: str | None = None  # the state file


@dataclass(frozen=True)
class BatchSummary:
    jobs_file: str
    where: str
    results: tuple[JobResult, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        """0 when every job is done, else the highest exit code of a failed job."""
        return max((r.exit_code for r in self.results if r.status != "done"), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"jobs_file": self.jobs_file, "where": self.where, "exit_code": self.exit_code, "results": [asdict(r) for r in self.results]}

    def lines(self) -> list[str]:
        out = [f"{self.jobs_file}: {len(self.results)} job(s) on {self.where}"]
        for r in self.results:
            if r.status == "done":
                extra = f"; already done earlier: {', '.join(r.skipped)}" if r.skipped else ""
                out.append(f"  {r.name}: done → {r.output} ({r.seconds:.0f} s{extra})")
            else:
                out.append(f"  {r.name}: FAILED (exit {r.exit_code}): {r.error}")
        return out


# ---------------------------------------------------------------------------------------
# Stage calls: module-level functions of plain arguments, run on any worker
# ---------------------------------------------------------------------------------------
def extract_stage(inputs: list[str], faceset: str, every: int, max_frames: int | None, consent: str) -> dict[str, Any]:
    from facedub.extract import ExtractConfig, extract_faceset

    s = extract_faceset(inputs, faceset, ExtractConfig(every=every, max_frames=max_frames, consent=consent))
    return {"faceset": faceset, "lines": s.lines(notes=False)}


def train_stage(config: Any) -> dict[str, Any]:
    from facedub.model.checkpoint import read_meta
    from facedub.train import train

    train(config)
    meta = read_meta(config.out)
    return {"step": int(meta.get("step", 0)), "minutes": float(meta.get("elapsed_s", 0.0)) / 60.0, "arch": meta.get("arch")}


def convert_stage(target: str, model: str, out: str, config: Any, matte_out: str | None, face_out: str | None) -> dict[str, Any]:
    from facedub.convert.pipeline import convert_video

    return convert_video(target, model, out, config, matte_out=matte_out, face_out=face_out).to_dict()


def verify_stage(path: str) -> dict[str, Any]:
    from facedub.safety.verify import verify_file

    return verify_file(path).to_dict()


def eval_stage(out: str, target: str, faceset: str, every: int, max_frames: int | None, html: str, json_out: str) -> dict[str, Any]:
    from facedub.evaluate.core import EvalConfig, evaluate

    er = evaluate(out, target, faceset, EvalConfig(every=every, max_frames=max_frames, report_html=html))
    write_json(json_out, er.to_dict())
    return er.to_dict()["summary"]


# ---------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------
def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def job_fingerprint(job: Job) -> str:
    return _fingerprint({"swap": asdict(job.swap), "options": asdict(job.options)})


def read_state(path: Path) -> dict[str, Any]:
    try:
        st = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return st if isinstance(st, dict) and st.get("type") == STATE_TYPE else {}


class _State:
    def __init__(self, path: Path, job_name: str, fingerprint: str | None) -> None:
        self.path = path
        old = read_state(path)
        self.data: dict[str, Any] = {"type": STATE_TYPE, "version": VERSION, "job": job_name, "fingerprint": fingerprint,
                                     "status": "running", "stages": {}}
        if old.get("fingerprint") == fingerprint and fingerprint is not None:
            self.data["stages"] = dict(old.get("stages") or {})
        self.previous_status = old.get("status") if old.get("fingerprint") == fingerprint else None

    @property
    def stages(self) -> dict[str, Any]:
        return self.data["stages"]

    def save(self, **changes: Any) -> None:
        self.data.update(changes, updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)


# ---------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------
class _Notes:
    """Forwards notes from job threads to the reporter, one at a time, named by job."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.lock = threading.Lock()

    def note(self, job: str, text: str) -> None:
        with self.lock:
            self.reporter.note(f"[{job}] {text}")


def run_batch(jobs: JobFile, executor: Executor | None = None, state_dir: str | os.PathLike[str] | None = None,
              reporter: Reporter | None = None, parallel_jobs: int | None = None) -> BatchSummary:
    """Run every job of ``jobs``. On this machine jobs run one after the other; on a cluster
    they run side by side (their calls are Ray tasks, placed by Ray), ``parallel_jobs`` at a
    time (default: all)."""
    executor = executor or LocalExecutor()
    notes = _Notes(reporter or NullReporter())
    sdir = Path(state_dir) if state_dir is not None else default_state_dir(jobs.path)
    local = isinstance(executor, LocalExecutor)
    n = 1 if local else max(1, parallel_jobs or len(jobs.jobs))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="facedub-batch") as pool:
        results = list(pool.map(lambda j: run_job(j, executor, sdir, notes, chunked=not local), jobs.jobs))
    return BatchSummary(jobs.path, executor.where, tuple(results))


def run_job(job: Job | JobError, executor: Executor, state_dir: Path, notes: _Notes, chunked: bool = False) -> JobResult:
    """One job to its end; every error becomes the job's recorded failure."""
    t0 = time.perf_counter()
    state = _State(state_dir / f"{job.name}.json", job.name, job_fingerprint(job) if isinstance(job, Job) else None)
    if isinstance(job, JobError):
        state.save(status="failed", error=job.message, exit_code=job.exit_code)
        notes.note(job.name, f"failed: {job.message}")
        return JobResult(job.name, "failed", job.exit_code, job.message, state=str(state.path))
    if state.previous_status == "done":
        notes.note(job.name, "already done")
        return JobResult(job.name, "done", 0, output=job.swap.out, skipped=("job",), state=str(state.path))
    skipped: list[str] = []
    try:
        if job.options.model is not None:
            output = _convert_only(job, executor, state, notes, skipped, chunked)
        else:
            output = _full_swap(job, executor, state, notes, skipped, chunked)
    except FacedubError as e:
        line = str(e).splitlines()[0] if str(e) else type(e).__name__
        state.save(status="failed", error=line, exit_code=e.exit_code)
        notes.note(job.name, f"failed: {line}")
        return JobResult(job.name, "failed", e.exit_code, line, skipped=tuple(skipped), seconds=time.perf_counter() - t0, state=str(state.path))
    except Exception as e:  # a bug: this job fails, the batch goes on
        line = f"internal error: {type(e).__name__}: {e}"
        state.save(status="failed", error=line, exit_code=3)
        notes.note(job.name, f"failed: {line}")
        return JobResult(job.name, "failed", 3, line, skipped=tuple(skipped), seconds=time.perf_counter() - t0, state=str(state.path))
    state.save(status="done", error=None, exit_code=0, output=output)
    notes.note(job.name, f"done: {output}")
    return JobResult(job.name, "done", 0, output=output, skipped=tuple(skipped), seconds=time.perf_counter() - t0, state=str(state.path))


def _full_swap(job: Job, ex: Executor, state: _State, notes: _Notes, skipped: list[str], chunked: bool) -> str:
    """Extract both, train, convert, verify, evaluate: ``facedub swap``'s chain as stage calls."""
    from facedub.model.checkpoint import read_meta
    from facedub.project import create_project, open_project, set_inputs
    from facedub.swap import _bind_consent, _check_before_work, _train_budget, choose_arch, default_project_dir, project_lock_for_swap
    from facedub.train import TrainConfig

    cfg = job.swap
    if job.sequence:
        raise BadInput(f"{cfg.target}: an image-sequence target needs a trained model (model = ...); training takes a video or images")
    out = Path(cfg.out).absolute()
    target = Path(cfg.target).absolute()
    sources = [Path(s).absolute() for s in cfg.source]
    pdir = Path(cfg.project) if cfg.project else default_project_dir(out)
    _check_before_work(cfg, out, target, sources, pdir, NullReporter())  # every cheap check before anything is written
    project = open_project(pdir) if (pdir / "project.json").is_file() else create_project(pdir.parent, pdir.name)
    lock = project_lock_for_swap(project.root).acquire()
    try:
        project = set_inputs(project, "source", [str(s) for s in sources])
        project = set_inputs(project, "target", [str(target)])
        _bind_consent(project, "source", cfg.source_consent)
        _bind_consent(project, "target", cfg.target_consent)
        state.save(project=str(project.root))

        # extraction: the two facesets side by side (each resumes by itself)
        ex_settings = {"every": cfg.every, "max_frames": cfg.max_frames}
        calls, roles = [], []
        for role, inputs in (("source", sources), ("target", [target])):
            key = f"extract-{role}"
            want = {**ex_settings, "inputs": [str(p) for p in inputs]}
            if state.stages.get(key, {}).get("settings") == want and Path(project.faceset_dir(role), "faceset.json").is_file():
                skipped.append(key)
                continue
            roles.append((key, want))
            calls.append(Call(extract_stage, ([str(p) for p in inputs], str(project.faceset_dir(role)), cfg.every, cfg.max_frames,
                                              str(project.consent_path(role))), label=f"{job.name}:{key}"))
        if calls:
            notes.note(job.name, "extract " + " and ".join(k for k, _ in roles))

            def extracted(k: int, result: dict[str, Any]) -> None:
                key, want = roles[k]
                state.stages[key] = {"settings": want, "lines": result["lines"]}
                state.save()

            ex.run(calls, extracted)

        # training: one call, on one worker
        arch = choose_arch(cfg.arch)
        meta = read_meta(project.model_dir) if project.has_model() else None
        if meta is not None and cfg.arch != "auto" and meta.get("arch") != arch:
            raise BadInput(f"{project.model_dir}: the project's model is {meta.get('arch')!r}, not {arch!r}; use another project or the same arch")
        arch = meta.get("arch", arch) if meta else arch
        steps, minutes = _train_budget(cfg, meta)
        if steps == 0:
            skipped.append("train")
        else:
            notes.note(job.name, f"train {arch}: " + (f"{steps} steps" if steps else f"{minutes:.1f} minutes"))
            tc = TrainConfig(source=str(project.faceset_dir("source")), target=str(project.faceset_dir("target")), out=str(project.model_dir),
                             arch=arch, steps=steps, minutes=minutes, resume=meta is not None)
            r = ex.run([Call(train_stage, (tc,), cpus=1.0, gpus=job.options.gpus, label=f"{job.name}:train")])[0]
            state.stages["train"] = r
            state.save()

        _convert(job, ex, state, notes, skipped, chunked, str(project.model_dir))
        _verify(job, ex, state, skipped)
        if cfg.evaluate and not job.sequence and not job.sequence_out and Path(cfg.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            _evaluate(job, ex, state, notes, skipped, project, out, target)
    finally:
        lock.release()
    return str(out)


def _convert_only(job: Job, ex: Executor, state: _State, notes: _Notes, skipped: list[str], chunked: bool) -> str:
    assert job.options.model is not None
    if not job.sequence and not Path(job.swap.target).exists():
        raise BadInput(f"{job.swap.target}: no such file")
    _convert(job, ex, state, notes, skipped, chunked, job.options.model)
    _verify(job, ex, state, skipped)
    return job.swap.out


def _ranges(job: Job, config: Any) -> list[tuple[int, int]]:
    """The frame ranges of the conversion tasks: of an image-sequence target in its own
    numbering, of a video target (into a sequence) by frame index from 0, the first
    ``max_frames`` of it when that is set."""
    if job.sequence:
        from facedub.media import sequence as seqmod

        pattern = seqmod.parse_pattern(job.swap.target)
        frames = seqmod.frames_on_disk(pattern) if pattern is not None and pattern.format is not None else []
        if not frames:
            raise BadInput(f"{job.swap.target}: no files of the sequence found")
        first, last = frames[0], frames[-1]
    else:
        from facedub.media.reader import open_single

        reader = open_single(Path(job.swap.target))
        if reader.kind != "video":
            raise BadInput(f"{job.swap.target}: an image target has one frame; its output cannot be an image sequence")
        count = len(reader.frame_pts())  # demuxed timestamps, as convert indexes the frames
        if count == 0:
            raise BadInput(f"{job.swap.target}: video holds no frames")
        first, last = 0, count - 1 if config.max_frames is None else min(count, config.max_frames) - 1
    lo, hi = config.frame_range if config.frame_range is not None else (first, last)
    step = job.options.chunk_frames
    return [(a, min(hi, a + step - 1)) for a in range(lo, hi + 1, step)]


def _convert(job: Job, ex: Executor, state: _State, notes: _Notes, skipped: list[str], chunked: bool, model: str) -> None:
    from facedub.model.checkpoint import read_meta

    cfg = job.swap
    meta = read_meta(model)
    cc = replace(cfg.convert, max_frames=cfg.max_frames, visible_label=cfg.visible_label)
    settings = {"model": str(Path(model).absolute()), "model_step": meta.get("step"), "model_id": meta.get("id") or meta.get("created"),
                "convert": asdict(cc), "target": cfg.target, "out": cfg.out, "matte_out": job.options.matte_out, "face_out": job.options.face_out}
    st = state.stages.get("convert") or {}
    if st.get("settings") != settings:
        st = {"settings": settings, "done": False, "chunks": []}
    if st.get("done") and (job.sequence or job.sequence_out or Path(cfg.out).is_file()):
        skipped.append("convert")
        return
    args = (cfg.target, model, cfg.out)
    extra = (job.options.matte_out, job.options.face_out)
    if (job.sequence or job.sequence_out) and chunked:
        ranges = [r for r in _ranges(job, cc) if list(r) not in st["chunks"]]
        # max_frames is in the ranges already (convert takes a range or a count, not both)
        calls = [Call(convert_stage, (*args, replace(cc, frame_range=r, max_frames=None), *extra), label=f"{job.name}:convert {r[0]}-{r[1]}")
                 for r in ranges]
        notes.note(job.name, f"convert in {len(calls)} frame range(s) of at most {job.options.chunk_frames} frames")
    else:
        ranges = []
        calls = [Call(convert_stage, (*args, cc, *extra), label=f"{job.name}:convert")]
        notes.note(job.name, "convert")
    st["summaries"] = st.get("summaries", [])

    def converted(k: int, result: dict[str, Any]) -> None:
        if ranges:
            st["chunks"].append(list(ranges[k]))
        st["summaries"].append({key: result.get(key) for key in ("output", "kind", "frames", "swapped", "bridged", "no_face", "seconds")})
        state.stages["convert"] = st
        state.save()

    ex.run(calls, converted)
    st["done"] = True
    state.stages["convert"] = st
    state.stages.pop("verify", None)
    state.save()


def _verify(job: Job, ex: Executor, state: _State, skipped: list[str]) -> None:
    if (state.stages.get("verify") or {}).get("watermark"):
        skipped.append("verify")
        return
    path = job.swap.out
    if job.sequence or job.sequence_out:
        from facedub.media import sequence as seqmod

        pattern = seqmod.parse_pattern(job.swap.out)
        written = seqmod.frames_on_disk(pattern) if pattern is not None else []
        if not written:
            raise BadInput(f"{job.swap.out}: the conversion wrote no frames")
        path = str(pattern.path(written[0]))
    v = ex.run([Call(verify_stage, (path,), label=f"{job.name}:verify")])[0]
    found = bool((v.get("watermark") or {}).get("found"))
    if not found:
        raise BadInput(f"{path}: the watermark was not found in the output")
    state.stages["verify"] = {"file": path, "watermark": found, "output_id": v.get("output_id")}
    state.save()


def _evaluate(job: Job, ex: Executor, state: _State, notes: _Notes, skipped: list[str], project: Any, out: Path, target: Path) -> None:
    conv = state.stages.get("convert") or {}
    if (state.stages.get("eval") or {}).get("convert") == conv.get("settings"):
        skipped.append("eval")
        return
    notes.note(job.name, "evaluate")
    html = str(project.output_dir / f"{out.stem}-report.html")
    summary = ex.run([Call(eval_stage, (str(out), str(target), str(project.faceset_dir("source")), job.swap.eval_every, job.swap.max_frames, html,
                                         str(project.output_dir / f"{out.stem}-eval.json")), label=f"{job.name}:eval")])[0]
    state.stages["eval"] = {"convert": conv.get("settings"), "report": html, "summary": summary}
    state.save()
