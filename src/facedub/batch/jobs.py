"""The job file: a TOML list of swaps.

::

    [defaults]                    # optional: keys every job gets unless it sets them
    minutes = 30
    source_consent = "consent/alice.json"

    [defaults.convert]            # any ConvertConfig field
    crf = 20

    [[jobs]]
    name = "alice-in-take1"       # names the job's state file (letters, digits, - and _)
    source = ["clips/alice.mp4"]  # or one string
    target = "clips/take1.mp4"    # a video, an image, or (with `model`) an image sequence shot.%04d.exr
    out = "out/take1.mp4"
    target_consent = "consent/bob.json"

    [[jobs]]
    name = "shot-010"
    model = "models/alice-to-bob" # an already trained model: no extraction, no training
    target = "plates/shot010.%04d.exr"
    out = "out/shot010.%04d.exr"
    matte_out = "matte/shot010.%04d.png"
    chunk_frames = 100            # on a cluster: frames per conversion task
    source_consent = "consent/alice.json"
    target_consent = "consent/bob.json"

Every key of a job other than ``name``, ``model``, ``matte_out``, ``face_out``,
``chunk_frames`` and ``gpus`` is a :class:`facedub.swap.SwapConfig` field (same meaning, same
default; ``convert`` is a table of :class:`facedub.convert.config.ConvertConfig` fields).
Relative paths are relative to the job file.

A problem with the file itself (not TOML, no ``[[jobs]]``) is one :class:`BadInput` line for
the whole file; a problem with one job (an unknown key, a bad value, a missing or invalid
consent record) is that job's :class:`JobError`, and the other jobs still run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from facedub.errors import BadInput, FacedubError
from facedub.fileio import read_toml

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
PATH_KEYS = ("source", "target", "out", "project", "source_consent", "target_consent", "model", "matte_out", "face_out")


@dataclass(frozen=True)
class BatchOptions:
    """What a job adds to :class:`facedub.swap.SwapConfig`."""

    model: str | None = None  # a trained model folder: the job only converts (no extraction, no training)
    matte_out: str | None = None  # an image-sequence target: the paste's alpha as a sequence
    face_out: str | None = None  # an image-sequence target: the swapped face layer as a sequence
    chunk_frames: int = 100  # on a cluster, an image-sequence target or output: frames per conversion task
    gpus: float = 0.0  # GPUs the training task asks the cluster for (a Ray resource hint)

    def __post_init__(self) -> None:
        if self.chunk_frames < 1:
            raise BadInput(f"chunk_frames must be at least 1, got {self.chunk_frames}")
        if self.gpus < 0:
            raise BadInput(f"gpus must be 0 or more, got {self.gpus}")


BATCH_KEYS = tuple(f.name for f in fields(BatchOptions))


@dataclass(frozen=True)
class Job:
    name: str
    index: int  # position in the file, from 1
    swap: Any  # facedub.swap.SwapConfig
    options: BatchOptions

    @property
    def sequence(self) -> bool:
        """The target is an image sequence (conversion can be split into frame ranges)."""
        from facedub.convert.sequence_out import names_sequence

        return names_sequence(self.swap.target)

    @property
    def sequence_out(self) -> bool:
        """The output is an image sequence (``shot.%04d.png``): a video target's conversion can
        be split into frame ranges too (frames numbered by index; every chunk as in one run)."""
        from facedub.convert.sequence_out import names_sequence

        return names_sequence(self.swap.out)


@dataclass(frozen=True)
class JobError:
    """A job the file describes but that cannot run; the other jobs still do."""

    name: str
    index: int
    message: str  # one line naming the file and the problem
    exit_code: int = 2


@dataclass(frozen=True)
class JobFile:
    path: str
    jobs: tuple[Job | JobError, ...]


def load_jobs(path: str | Path) -> JobFile:
    """Read ``path``. BadInput when the file as a whole is unusable."""
    p = Path(path)
    data = read_toml(p, "job file")
    unknown = sorted(set(data) - {"defaults", "jobs"})
    if unknown:
        raise BadInput(f"{p}: unknown top-level key(s) {', '.join(unknown)}; a job file has [defaults] and [[jobs]]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise BadInput(f"{p}: [defaults] must be a table")
    raw = data.get("jobs")
    if not isinstance(raw, list) or not raw or not all(isinstance(j, Mapping) for j in raw):
        raise BadInput(f"{p}: no jobs; list each swap in a [[jobs]] table")
    jobs: list[Job | JobError] = []
    seen: set[str] = set()
    for k, entry in enumerate(raw, start=1):
        name = entry.get("name", f"job-{k}")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise BadInput(f"{p}: job {k}: name must be letters, digits, '-' and '_' (it names the job's state file), got {name!r}")
        if name in seen:
            raise BadInput(f"{p}: two jobs are named {name!r}; job names must be unique")
        seen.add(name)
        merged = {**defaults, **entry}
        if isinstance(defaults.get("convert"), Mapping) and isinstance(entry.get("convert"), Mapping):
            merged["convert"] = {**defaults["convert"], **entry["convert"]}
        try:
            jobs.append(_job(p, k, name, merged))
        except FacedubError as e:
            jobs.append(JobError(name, k, f"{p}: job {name!r}: {e}", e.exit_code if e.exit_code != 3 else 2))
    return JobFile(str(p), tuple(jobs))


def _job(path: Path, index: int, name: str, d: dict[str, Any]) -> Job:
    from facedub.convert.config import ConvertConfig
    from facedub.safety.consent import check_valid, load_consent
    from facedub.swap import SwapConfig

    d = {k: v for k, v in d.items() if k != "name"}
    swap_keys = {f.name for f in fields(SwapConfig)}
    unknown = sorted(set(d) - swap_keys - set(BATCH_KEYS))
    if unknown:
        raise BadInput(f"unknown key(s) {', '.join(unknown)} (a job takes {', '.join(sorted(swap_keys | set(BATCH_KEYS)))})")
    base = path.parent
    for key in PATH_KEYS:
        if key in d:
            d[key] = _paths(base, d[key], key)
    if isinstance(d.get("source"), str):
        d["source"] = (d["source"],)
    if "source" in d:
        d["source"] = tuple(d["source"])
    opts = BatchOptions(**{k: d.pop(k) for k in BATCH_KEYS if k in d})
    if opts.model is not None:
        d.setdefault("source", (opts.model,))  # SwapConfig wants a source; a model job has none to extract
    for key in ("target", "out"):
        if key not in d:
            raise BadInput(f"needs {key} = ...")
    conv = d.get("convert", {})
    if not isinstance(conv, Mapping):
        raise BadInput("convert must be a table of convert settings")
    conv_keys = {f.name for f in fields(ConvertConfig)}
    bad = sorted(set(conv) - conv_keys)
    if bad:
        raise BadInput(f"unknown convert setting(s) {', '.join(bad)}")
    conv = dict(conv)
    if "frame_range" in conv:
        conv["frame_range"] = tuple(conv["frame_range"])
    try:
        d["convert"] = ConvertConfig(**conv)
        swap = SwapConfig(**d)
    except TypeError as e:
        raise BadInput(f"a setting has the wrong type ({e})") from None
    for role in ("source", "target"):
        rec = getattr(swap, f"{role}_consent")
        if rec is None:
            raise BadInput(f"needs {role}_consent = the consent record (JSON) of the {role} person")
        if not Path(rec).is_file():
            raise BadInput(f"{role}_consent {rec}: no such consent record")
        check_valid(load_consent(rec), where=str(rec))
    if opts.model is not None and not Path(opts.model, "model.json").is_file():
        raise BadInput(f"model {opts.model}: not a model folder (no model.json)")
    return Job(name, index, swap, opts)


def _paths(base: Path, value: Any, key: str) -> Any:
    if isinstance(value, str):
        return str(base / value) if not Path(value).is_absolute() else value
    if key == "source" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [_paths(base, v, key) for v in value]
    raise BadInput(f"{key} must be a path (a string{', or a list of them' if key == 'source' else ''})")
