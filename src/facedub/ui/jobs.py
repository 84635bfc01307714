"""Background jobs for the web UI: one at a time per project, state kept in the project.

A job is a function ``fn(reporter) -> dict | None`` that calls one or more *stage functions*
(see docs/CONTRACTS.md). It runs in a thread; its :class:`JobReporter` writes the job state
to ``PROJECT/jobs/<id>.json`` as it goes (throttled), so a reloaded page, a second browser
tab or the CLI all read the same progress. Cancelling sets a flag (and a ``<id>.stop`` file,
so a stop from another process works too) that the stage sees through ``should_stop()``.

Errors become plain messages in the state, never tracebacks: ``ContentRefused`` and
``ConsentMissing`` give status ``refused``, ``BadInput`` and other facedub errors ``failed``
with their one-line message, ``Cancelled`` gives ``cancelled``; an unexpected exception gives
``failed`` with a one-line summary, and its traceback goes to ``jobs/<id>.log`` only.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from facedub.errors import Cancelled, ConsentMissing, ContentRefused, FacedubError
from facedub.fileio import write_json
from facedub.project_lock import ProjectBusy, ProjectLock, holder

Status = Literal["running", "done", "failed", "refused", "cancelled", "interrupted"]
FINISHED = ("done", "failed", "refused", "cancelled", "interrupted")

MAX_NOTES = 50
MAX_HISTORY = 400
KEEP_JOBS = 40  # job records kept per project (older ones, with their logs and plots, are pruned)
WRITE_EVERY_S = 0.5


class JobBusy(ProjectBusy):
    """Another job of the same project is still running (here or in another process)."""


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else None
    try:
        return float(v)  # numpy / torch scalars
    except (TypeError, ValueError):
        return str(v)


class JobReporter:
    """A :class:`facedub.progress.Reporter` that keeps the job's state and persists it."""

    def __init__(self, jobs_dir: Path, job_id: str, kind: str, label: str = "") -> None:
        self.jobs_dir = jobs_dir
        self.path = jobs_dir / f"{job_id}.json"
        self.stop_path = jobs_dir / f"{job_id}.stop"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one write at a time, in the order the snapshots were taken
        self._last_write = 0.0
        self._phase_t0 = time.monotonic()
        self._hist_every = 1
        self.state: dict[str, Any] = {
            "id": job_id,
            "kind": kind,
            "label": label or kind,
            "status": "running",
            "pid": os.getpid(),
            "started": _now_iso(),
            "updated": _now_iso(),
            "finished": None,
            "phase": "",
            "phases": [],
            "unit": "it",
            "total": None,
            "done": 0,
            "rate": None,  # units per second in the current phase
            "eta_s": None,
            "metrics": {},
            "history": [],  # [{"done": n, **metrics}] of the current phase, subsampled
            "notes": [],
            "images": [],  # [{"path", "caption"}], newest last
            "error": None,
            "result": None,
            "stop_requested": False,
        }

    # --- Reporter protocol ---------------------------------------------------------------
    def start(self, phase: str, total: int | None = None, unit: str = "it") -> None:
        with self._lock:
            s = self.state
            s.update(phase=phase, total=total, unit=unit, done=0, rate=None, eta_s=None, history=[])
            s["phases"].append(phase)
            self._phase_t0 = time.monotonic()
            self._hist_every = 1
        self._save(force=True)

    def advance(self, n: int = 1, **metrics: Any) -> None:
        with self._lock:
            s = self.state
            s["done"] += n
            if metrics:
                s["metrics"].update({k: _jsonable(v) for k, v in metrics.items()})
                if s["done"] % self._hist_every == 0:
                    s["history"].append({"done": s["done"], **{k: _jsonable(v) for k, v in metrics.items()}})
                    if len(s["history"]) > MAX_HISTORY:
                        s["history"] = s["history"][::2]
                        self._hist_every *= 2
            dt = time.monotonic() - self._phase_t0
            if dt > 0 and s["done"] > 0:
                s["rate"] = s["done"] / dt
                if s["total"]:
                    s["eta_s"] = max(0.0, (s["total"] - s["done"]) / s["rate"])
        self._save()

    def note(self, message: str) -> None:
        with self._lock:
            self.state["notes"] = (self.state["notes"] + [str(message)])[-MAX_NOTES:]
        self._save(force=True)

    def image(self, path: str, caption: str = "") -> None:
        with self._lock:
            imgs = [i for i in self.state["images"] if not (i["caption"] == caption and caption)]
            self.state["images"] = (imgs + [{"path": str(path), "caption": caption}])[-20:]
        self._save(force=True)

    def finish(self) -> None:
        self._save(force=True)

    def set_field(self, key: str, value: Any) -> None:
        """Put an extra JSON value into the job state (e.g. a swap's stage list) and save it."""
        with self._lock:
            self.state[key] = json.loads(json.dumps(value))
        self._save(force=True)

    def should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        if self.stop_path.exists():
            self._stop.set()
            return True
        return False

    # --- runner side ---------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()
        with self._lock:
            self.state["stop_requested"] = True
        self._save(force=True)

    def end(self, status: str, error: str | None = None, result: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.state.update(status=status, error=error, finished=_now_iso(), eta_s=None)
            if result is not None:
                self.state["result"] = result
        self._save(force=True)
        try:
            self.stop_path.unlink(missing_ok=True)
        except OSError:
            pass

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.state))

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < WRITE_EVERY_S:
            return
        self._last_write = now
        # Snapshot and write under one lock: two threads saving at once could otherwise write
        # their snapshots out of order, leaving an older state on disk.
        with self._write_lock:
            with self._lock:
                self.state["updated"] = _now_iso()
                data = json.loads(json.dumps(self.state))
            try:
                write_json(self.path, data)
            except OSError:
                pass  # a full disk must not kill the job; the in-memory state still answers


def _classify(e: BaseException) -> tuple[str, str]:
    if isinstance(e, Cancelled):
        return "cancelled", str(e) or "stopped"
    if isinstance(e, (ContentRefused, ConsentMissing)):
        return "refused", str(e)
    if isinstance(e, FacedubError):
        return "failed", str(e)
    if isinstance(e, MemoryError):
        return "failed", "out of memory: try a smaller batch size or a smaller model"
    msg = str(e).splitlines()[0] if str(e) else ""
    return "failed", f"internal error: {type(e).__name__}{': ' + msg if msg else ''}"


def list_jobs(jobs_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All job states of a project, oldest first (reads every record: for tools and tests;
    the page reads only the newest, see :meth:`JobManager.latest`)."""
    folder = Path(jobs_dir)
    out = []
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.json")):
        try:
            s = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(s, dict) or "id" not in s:
            continue
        out.append(s)
    return out


def _job_files(jobs_dir: Path, kind: str | None = None) -> list[Path]:
    """Job record files, oldest first, by name alone (ids start with the UTC time; no reads)."""
    if not jobs_dir.is_dir():
        return []
    pattern = f"*-{kind}.json" if kind else "*.json"
    return sorted(jobs_dir.glob(pattern), key=lambda p: p.name)


def prune_jobs(jobs_dir: str | os.PathLike[str], keep: int = KEEP_JOBS) -> list[str]:
    """Delete all but the newest ``keep`` job records (with their log, stop file and loss
    plot), always keeping the newest of each kind. Returns the ids removed."""
    folder = Path(jobs_dir)
    files = _job_files(folder)
    if len(files) <= keep:
        return []
    newest_of_kind: dict[str, Path] = {}
    for f in files:
        newest_of_kind[f.stem.rsplit("-", 1)[-1]] = f
    protect = set(newest_of_kind.values())
    removed = []
    for f in files[: len(files) - keep]:
        if f in protect:
            continue
        jid = f.stem
        for extra in (f, folder / f"{jid}.log", folder / f"{jid}.stop", folder / f"{jid}-loss.png"):
            try:
                extra.unlink(missing_ok=True)
            except OSError:
                pass
        removed.append(jid)
    return removed


class JobManager:
    """Starts, tracks and stops jobs. One manager per server process.

    One job per project: inside this process by the table of running jobs, across processes
    by :class:`facedub.project_lock.ProjectLock` (the same lock ``facedub swap`` takes).
    """

    def __init__(self, keep_jobs: int = KEEP_JOBS) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, tuple[JobReporter, threading.Thread]] = {}  # project root → job
        self._cache: dict[str, tuple[float, int, dict[str, Any]]] = {}  # record path → (mtime, size, state)
        self.keep_jobs = keep_jobs
        self.reads = 0  # job files parsed (the poll's cost; see tests)

    @staticmethod
    def _key(project_root: Path) -> str:
        return str(Path(project_root).resolve())

    def active(self, project_root: Path) -> JobReporter | None:
        with self._lock:
            item = self._running.get(self._key(project_root))
        if item and item[1].is_alive():
            return item[0]
        return None

    def start(
        self,
        project_root: Path,
        kind: str,
        fn: Callable[[JobReporter], dict[str, Any] | None],
        label: str = "",
    ) -> str:
        """Start ``fn`` in a background thread; returns the job id. Raises JobBusy when the
        project already runs a job (in this process, or in another live process)."""
        jobs_dir = Path(project_root) / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        key = self._key(project_root)
        with self._lock:
            item = self._running.get(key)
            if item and item[1].is_alive():
                raise JobBusy(f"{project_root}: a job is already running ({item[0].state['label']}); stop it or wait")
            job_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{int(time.time() * 1000) % 1000:03d}-{kind}"
            lock = ProjectLock(project_root, job_id, label or kind)
            try:
                lock.acquire()
            except ProjectBusy as e:
                raise JobBusy(str(e)) from None
            try:
                prune_jobs(jobs_dir, self.keep_jobs)
                rep = JobReporter(jobs_dir, job_id, kind, label)
                rep._save(force=True)
                th = threading.Thread(target=self._run, args=(rep, fn, lock), name=f"facedub-job-{job_id}", daemon=True)
                self._running[key] = (rep, th)
                th.start()
            except BaseException:
                lock.release()
                raise
        return job_id

    @staticmethod
    def _run(rep: JobReporter, fn: Callable[[JobReporter], dict[str, Any] | None], lock: ProjectLock) -> None:
        try:
            try:
                result = fn(rep)
            except BaseException as e:  # noqa: BLE001 - every failure becomes a message
                status, msg = _classify(e)
                if status == "failed" and not isinstance(e, FacedubError):
                    try:
                        (rep.jobs_dir / f"{rep.state['id']}.log").write_text(traceback.format_exc(), encoding="utf-8")
                    except OSError:
                        pass
                rep.end(status, error=msg)
                return
            result = result if isinstance(result, dict) else None
            # a stage that stops cleanly on request (train saves and returns) still counts as stopped
            rep.end("cancelled" if (result or {}).get("stopped") else "done", result=result)
        finally:
            lock.release()

    def stop(self, project_root: Path) -> bool:
        """Ask the project's running job to stop. True when there was one."""
        rep = self.active(project_root)
        if rep is not None:
            rep.request_stop()
            return True
        # a job of another process: leave a stop file it polls
        other = holder(project_root)
        if other and other.get("job"):
            (Path(project_root) / "jobs" / f"{other['job']}.stop").touch()
            return True
        return False

    def wait(self, project_root: Path, timeout: float | None = None) -> bool:
        with self._lock:
            item = self._running.get(self._key(project_root))
        if item is None:
            return True
        item[1].join(timeout)
        return not item[1].is_alive()

    def _read(self, path: Path) -> dict[str, Any] | None:
        """One job record, parsed again only when the file changed since the last read."""
        try:
            st = path.stat()
        except OSError:
            return None
        hit = self._cache.get(str(path))
        if hit and hit[0] == st.st_mtime and hit[1] == st.st_size:
            return hit[2]
        try:
            s = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.reads += 1
        if not isinstance(s, dict) or "id" not in s:
            return None
        if len(self._cache) > 256:
            self._cache.clear()
        self._cache[str(path)] = (st.st_mtime, st.st_size, s)
        return s

    def latest(self, project_root: Path, kind: str | None = None) -> dict[str, Any] | None:
        """The newest job state of the project (optionally of one kind), live if running here.
        Reads at most the newest record file, and only when it changed."""
        rep = self.active(project_root)
        if rep is not None and (kind is None or rep.state["kind"] == kind):
            return rep.snapshot()
        s = None
        for f in reversed(_job_files(Path(project_root) / "jobs", kind)):
            s = self._read(f)
            if s is not None:
                break
        if s is None:
            return None
        if s.get("status") == "running":
            pid = s.get("pid")
            if pid == os.getpid():
                gone = rep is None or rep.state["id"] != s.get("id")
            else:
                who = holder(project_root)
                gone = not who or who.get("job") != s.get("id")
            if gone:
                s = dict(s, status="interrupted", error="the app stopped while this job ran; start it again to resume")
        return s
