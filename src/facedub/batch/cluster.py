"""Where independent calls run: in turn on this machine, or as tasks on a Ray cluster.

An executor takes a list of :class:`Call` s (a module-level function, its arguments and the
resources it asks for) and runs them, calling back as each one finishes; it does no
scheduling of its own. :class:`LocalExecutor` runs them one after the other here;
:class:`RayExecutor` submits each as a Ray task with its resource hints (``num_cpus``,
``num_gpus``) and Ray places them. Ray is imported only by :func:`connect`, so facedub works
without the ``facedub[cluster]`` extra.

``--cluster`` takes a Ray address (``ray://head:10001``, ``head:6379`` or ``auto``) or
``local:N``: a Ray instance on this machine with N worker slots (tests, one big box).
Shared storage is assumed: every path in a call means the same file on every worker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

from facedub.errors import BadInput, FacedubError

LOCAL_RE = re.compile(r"^local:([1-9][0-9]{0,2})$")
LOCAL_OBJECT_STORE = 96 << 20  # bytes: calls pass paths and small dicts, never frames
INSTALL_HINT = "pip install 'facedub[cluster]'"


@dataclass(frozen=True)
class Call:
    fn: Callable[..., Any]  # importable by name on every worker (a module-level function)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    cpus: float = 1.0
    gpus: float = 0.0
    label: str = ""


class CallFailed(FacedubError):
    """A call raised on a worker; carries the worker's exit code and one-line message."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Executor(Protocol):
    where: str

    def run(self, calls: Sequence[Call], on_done: Callable[[int, Any], None] | None = None) -> list[Any]: ...


def invoke(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any, int]:
    """Run one call, turning its error into plain data (what a worker sends back): a
    facedub error keeps its line and exit code, anything else is an internal error (3)."""
    try:
        return ("ok", fn(*args, **kwargs), 0)
    except FacedubError as e:
        return ("error", str(e), e.exit_code)
    except Exception as e:  # a bug: reported as one line with the exception type
        return ("error", f"internal error: {type(e).__name__}: {e}", 3)


def _unwrap(out: tuple[str, Any, int]) -> Any:
    status, value, code = out
    if status != "ok":
        raise CallFailed(value, code)
    return value


class LocalExecutor:
    """Every call in this process, in order."""

    where = "this machine"

    def run(self, calls: Sequence[Call], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        results = []
        for k, c in enumerate(calls):
            r = _unwrap(invoke(c.fn, c.args, c.kwargs))
            if on_done is not None:
                on_done(k, r)
            results.append(r)
        return results


class RayExecutor:
    """Each call a Ray task with its resource hints; results come back as they finish. The
    first failure is raised after every call of the list has ended (none is left running)."""

    def __init__(self, ray: Any, where: str) -> None:
        self.ray = ray
        self.where = where
        self._task = ray.remote(invoke)

    def run(self, calls: Sequence[Call], on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        ray = self.ray
        refs = [self._task.options(num_cpus=c.cpus, num_gpus=c.gpus, name=c.label or c.fn.__name__).remote(c.fn, c.args, c.kwargs) for c in calls]
        index = {r: k for k, r in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        failure: CallFailed | None = None
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            k = index[done[0]]
            try:
                results[k] = _unwrap(ray.get(done[0]))
            except CallFailed as e:
                failure = failure or e
                continue
            except Exception as e:  # the worker died, or the task could not run at all
                failure = failure or CallFailed(f"cluster task {calls[k].label or calls[k].fn.__name__} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", 3)
                continue
            if on_done is not None:
                on_done(k, results[k])
        if failure is not None:
            raise failure
        return results


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BadInput(f"--cluster needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[Executor]:
    """The executor for ``--cluster ADDRESS`` (None: this machine, no Ray)."""
    if not address:
        yield LocalExecutor()
        return
    ray = _import_ray()
    m = LOCAL_RE.match(address)
    tmp = None
    if m:
        # A short folder: Ray's socket paths must stay under the 107-byte limit.
        tmp = tempfile.mkdtemp(prefix="fdray", dir="/tmp" if os.path.isdir("/tmp") else None)
        try:
            ray.init(num_cpus=int(m.group(1)), object_store_memory=LOCAL_OBJECT_STORE, include_dashboard=False,
                     _temp_dir=tmp, log_to_driver=False, configure_logging=False)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BadInput(f"--cluster {address}: could not start a local Ray instance ({type(e).__name__}: {e})") from None
        where = f"a local Ray instance with {m.group(1)} workers"
    else:
        if address.startswith("local"):
            raise BadInput(f"--cluster {address}: write local:N with N workers, e.g. local:2")
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as e:
            raise BadInput(f"--cluster {address}: could not connect to the Ray cluster ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        where = f"the Ray cluster at {address}"
    try:
        yield RayExecutor(ray, where)
    finally:
        ray.shutdown()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def add_cluster_argument(p: argparse.ArgumentParser, what: str) -> None:
    """The one definition of ``--cluster`` (batch, dataset)."""
    p.add_argument(
        "--cluster", metavar="ADDRESS", default=None,
        help=f"run {what} as tasks on a Ray cluster (its address, e.g. ray://head:10001 or auto), or local:N for N "
             f"workers on this machine; shared storage is assumed (needs {INSTALL_HINT})",
    )
