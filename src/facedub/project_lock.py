"""One job at a time per project, across processes: an OS lock on ``PROJECT/jobs/lock``.

The web app's jobs and ``facedub swap`` take the same lock, so two processes (two servers, a
server and the CLI) cannot both run a job in one project. It is an ``fcntl.flock`` on an
open file: the kernel drops it when the holder exits or crashes, so a lock left by a dead
process never blocks (no stale-PID guessing). The file's text only says who holds it
(``pid``, job id, label), for messages and for a stop request from another process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from facedub.errors import BadInput

LOCK_NAME = "lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: fall back to an O_EXCL marker
    fcntl = None  # type: ignore[assignment]


class ProjectBusy(BadInput):
    """Another job (in this or another process) holds the project's lock."""


def lock_path(project_root: str | os.PathLike[str]) -> Path:
    return Path(project_root) / "jobs" / LOCK_NAME


def holder(project_root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Who holds the lock now ({"pid", "job", "label"}), or None when it is free."""
    path = lock_path(project_root)
    if not path.is_file():
        return None
    if fcntl is not None:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: read who holds it
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return None
        finally:
            os.close(fd)
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}


class ProjectLock:
    """``with ProjectLock(root, job_id, label):`` or ``acquire()`` / ``release()``."""

    def __init__(self, project_root: str | os.PathLike[str], job: str = "", label: str = "") -> None:
        self.root = Path(project_root)
        self.path = lock_path(project_root)
        self.info = {"pid": os.getpid(), "job": job, "label": label or job}
        self._fd: int | None = None

    def acquire(self) -> "ProjectLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            self._acquire_excl()
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ProjectBusy(self._busy_message()) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.info).encode("utf-8"), 0)
        self._fd = fd
        return self

    def _busy_message(self) -> str:
        try:
            other = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            other = {}
        what = other.get("label") or other.get("job") or "a job"
        mine = other.get("pid") == os.getpid()
        where = "" if mine else f" in another process (pid {other.get('pid', '?')})"
        return f"{self.root}: a job is already running{where} ({what}); stop it or wait"

    def _acquire_excl(self) -> None:  # pragma: no cover - non-POSIX fallback with stale-PID check
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    pid = int(json.loads(self.path.read_text(encoding="utf-8")).get("pid", 0))
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    raise ProjectBusy(self._busy_message()) from None
                self.path.unlink(missing_ok=True)
                continue
            os.write(fd, json.dumps(self.info).encode("utf-8"))
            os.close(fd)
            self._fd = -1
            return
        raise ProjectBusy(self._busy_message())

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if fcntl is None:  # pragma: no cover
            self.path.unlink(missing_ok=True)
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "ProjectLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _alive(pid: int) -> bool:  # pragma: no cover - used by the non-POSIX fallback
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
