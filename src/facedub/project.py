"""Project folders: the one layout that ``facedub swap``, the CLI and the web UI share.

A project is a folder under a *projects root*::

    PROJECT/
      project.json            name, creation time, the chosen input files per role
      consent/source.json     consent record of the source identity (the face put in)
      consent/target.json     consent record of the target identity (the face replaced)
      inputs/source/          files uploaded through the web UI (local paths are referenced)
      inputs/target/
      facesets/source/        faceset.json + faces/*.png
      facesets/target/
      model/                  weights.safetensors + model.json + previews
      output/                 result.mp4 (+ its manifest), preview.png
      jobs/                   one JSON per background job (status, progress, messages)

Every path handed in from outside (a project name, an upload's file name, a crop name to
remove) goes through :func:`safe_join`, so nothing can reach outside the project folder.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal, get_args

from facedub.errors import BadInput
from facedub.fileio import write_json

Role = Literal["source", "target"]  # source = the identity put in; target = the video whose face is replaced
ROLES: tuple[str, ...] = get_args(Role)

PROJECT_JSON = "project.json"
PROJECT_SCHEMA_VERSION = 1
RESULT_NAME = "result.mp4"
PREVIEW_NAME = "preview.png"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$")
_FILE_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_project_name(name: str) -> str:
    """A project name is a plain folder name: letters, digits, space, dot, dash, underscore."""
    name = (name or "").strip()
    if not _NAME_RE.match(name) or name in (".", "..") or ".." in name:
        raise BadInput(
            f"{name!r}: not a usable project name (use 1-64 letters, digits, spaces, '.', '-', '_'; "
            "start with a letter or digit)"
        )
    return name


def sanitize_filename(name: str, default: str = "file") -> str:
    """A safe single file name from an untrusted one (an upload's name): no folders, no
    leading dots, only ``[A-Za-z0-9._-]``. ``"../../etc/passwd"`` → ``"passwd"``."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _FILE_BAD.sub("_", base).lstrip("._")
    base = base[:120]
    return base or default


def safe_join(base: str | os.PathLike[str], *parts: str) -> Path:
    """``base/parts...`` resolved, refusing any result outside ``base`` (``..``, absolute
    parts, symlinks pointing out)."""
    root = Path(base).resolve()
    p = root.joinpath(*parts).resolve()
    if p != root and root not in p.parents:
        raise BadInput(f"{Path(*parts) if parts else base}: path leaves {root}")
    return p


def is_inside(path: str | os.PathLike[str], base: str | os.PathLike[str]) -> bool:
    try:
        p, root = Path(path).resolve(), Path(base).resolve()
    except (OSError, RuntimeError):
        return False
    return p == root or root in p.parents


@dataclass(frozen=True)
class Project:
    """An opened project folder. Paths are absolute."""

    root: Path  # the project folder itself
    name: str  # folder name, also shown in the UI
    created: str = ""  # ISO 8601 UTC
    inputs: dict[str, tuple[str, ...]] | None = None  # role → input files (absolute paths)

    # --- layout -----------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        return safe_join(self.root, *parts)

    def consent_path(self, role: str) -> Path:
        return self.root / "consent" / f"{check_role(role)}.json"

    def inputs_dir(self, role: str) -> Path:
        return self.root / "inputs" / check_role(role)

    def faceset_dir(self, role: str) -> Path:
        return self.root / "facesets" / check_role(role)

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def result_path(self) -> Path:
        return self.output_dir / RESULT_NAME

    @property
    def preview_path(self) -> Path:
        return self.output_dir / PREVIEW_NAME

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def input_files(self, role: str) -> tuple[str, ...]:
        return tuple((self.inputs or {}).get(check_role(role), ()))

    # --- state seen by the UI -----------------------------------------------------------
    def has_consent(self, role: str) -> bool:
        return self.consent_path(role).is_file()

    def load_consent(self, role: str) -> dict[str, Any] | None:
        p = self.consent_path(role)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except ValueError:
            raise BadInput(f"{p}: corrupt consent record") from None

    def face_count(self, role: str) -> int:
        js = self.faceset_dir(role) / "faceset.json"
        if not js.is_file():
            return 0
        try:
            return len(json.loads(js.read_text(encoding="utf-8")).get("faces", ()))
        except ValueError:
            return 0

    def has_model(self) -> bool:
        return (self.model_dir / "model.json").is_file()

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "consent": {r: self.has_consent(r) for r in ROLES},
            "inputs": {r: list(self.input_files(r)) for r in ROLES},
            "faces": {r: self.face_count(r) for r in ROLES},
            "model": self.has_model(),
            "result": self.result_path.is_file(),
        }


# --- create / open / list ----------------------------------------------------------------
def _write_project_json(project: Project) -> None:
    write_json(
        project.root / PROJECT_JSON,
        {
            "schema_version": PROJECT_SCHEMA_VERSION,
            "name": project.name,
            "created": project.created,
            "inputs": {r: list(project.input_files(r)) for r in ROLES},
        },
    )


def create_project(projects_root: str | os.PathLike[str], name: str) -> Project:
    """Create ``projects_root/name`` with the standard layout. An existing project is opened."""
    name = check_project_name(name)
    root = Path(projects_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{root}: cannot create projects folder ({e.strerror})") from None
    folder = safe_join(root, name)
    if (folder / PROJECT_JSON).is_file():
        return open_project(folder)
    if folder.exists() and any(folder.iterdir()):
        raise BadInput(f"{folder}: folder exists and is not a facedub project")
    project = Project(root=folder, name=name, created=_now(), inputs={r: () for r in ROLES})
    try:
        for sub in ("consent", "inputs/source", "inputs/target", "facesets", "model", "output", "jobs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        _write_project_json(project)
    except BadInput:
        raise  # a write error, already naming the file
    except OSError as e:
        raise BadInput(f"{folder}: cannot create project ({e.strerror or e})") from None
    return project


def open_project(path: str | os.PathLike[str], name: str | None = None) -> Project:
    """Open a project folder, or ``path/name`` when ``name`` is given (checked for traversal)."""
    folder = Path(path)
    if name is not None:
        folder = safe_join(folder, check_project_name(name))
    js = folder / PROJECT_JSON
    if not js.is_file():
        raise BadInput(f"{folder}: not a facedub project (no {PROJECT_JSON})")
    try:
        d = json.loads(js.read_text(encoding="utf-8"))
        inputs = {r: tuple(str(x) for x in d.get("inputs", {}).get(r, ())) for r in ROLES}
        return Project(root=folder.resolve(), name=str(d.get("name") or folder.name), created=str(d.get("created", "")), inputs=inputs)
    except (ValueError, AttributeError, TypeError):
        raise BadInput(f"{js}: corrupt project file") from None


def list_projects(projects_root: str | os.PathLike[str]) -> list[Project]:
    """Projects directly under ``projects_root``, by name. Unreadable folders are skipped."""
    root = Path(projects_root)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / PROJECT_JSON).is_file():
            try:
                out.append(open_project(d))
            except BadInput:
                continue
    return out


# Folders of a project that its own jobs write: an input taken from there would be
# overwritten or deleted by the next job (the result, the preview, a faceset's crops).
WRITTEN_DIRS = ("facesets", "model", "output", "jobs", "consent")


def check_input_path(project: Project, path: str | os.PathLike[str]) -> Path:
    """An input path for ``project``: it must exist and must not be (or hold, or link to) a
    file the project's jobs write. Returns it resolved. BadInput naming the path otherwise."""
    from facedub.outputs import folder_kind, same_file

    shown = str(path)
    p = Path(path).expanduser()
    try:
        os.stat(p)
    except OSError as e:
        raise BadInput(f"{shown}: {'name too long' if e.errno == errno.ENAMETOOLONG else 'no such file'}") from None
    r = p.resolve()
    for sub in WRITTEN_DIRS:
        d = project.root / sub
        if is_inside(r, d) or is_inside(d, r):
            raise BadInput(f"{shown}: is facedub's own {sub}/ of this project (written by its jobs); choose the original file")
    for made in (project.result_path, project.preview_path):
        if made.exists() and same_file(p, made):
            raise BadInput(f"{shown}: is this project's {made.name} (written by its jobs); choose the original file")
    if p.is_dir() and folder_kind(p) in ("faceset", "model", "project"):
        raise BadInput(f"{shown}: is a {folder_kind(p)} folder, not a video, image or folder of images")
    return r


def set_inputs(project: Project, role: str, files: Iterable[str | os.PathLike[str]]) -> Project:
    """Record the input files of one role (absolute paths; each must exist and must not be a
    file this project's jobs write: see :func:`check_input_path`)."""
    check_role(role)
    paths = []
    for f in files:
        paths.append(str(check_input_path(project, f)))
    if not paths:
        raise BadInput(f"{project.root}: no {role} input given")
    inputs = dict(project.inputs or {})
    inputs[role] = tuple(paths)
    new = replace(project, inputs=inputs)
    _write_project_json(new)
    return new


def import_upload(project: Project, role: str, uploaded: str | os.PathLike[str], original_name: str | None = None) -> Path:
    """Copy an uploaded file into ``inputs/ROLE/`` under a sanitised name; returns the copy."""
    src = Path(uploaded)
    if not src.is_file():
        raise BadInput(f"{src}: uploaded file is missing")
    folder = project.inputs_dir(role)
    folder.mkdir(parents=True, exist_ok=True)
    dest = safe_join(folder, sanitize_filename(original_name or src.name, default="upload"))
    if dest.exists() and dest.resolve() != src.resolve():
        stem, suf = dest.stem, dest.suffix
        i = 1
        while (folder / f"{stem}-{i}{suf}").exists():
            i += 1
        dest = folder / f"{stem}-{i}{suf}"
    if dest.resolve() != src.resolve():
        tmp = folder / f".{dest.name}.part"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest


# --- faceset gallery ----------------------------------------------------------------------
def faceset_crops(faceset_dir: str | os.PathLike[str]) -> list[tuple[Path, str, int]]:
    """(absolute crop path, crop name as in faceset.json, frame index) of every face present."""
    folder = Path(faceset_dir)
    js = folder / "faceset.json"
    if not js.is_file():
        return []
    try:
        faces = json.loads(js.read_text(encoding="utf-8")).get("faces", ())
    except ValueError:
        raise BadInput(f"{js}: corrupt faceset") from None
    out = []
    for f in faces:
        rel = str(f.get("file", ""))
        try:
            p = safe_join(folder, rel)
        except BadInput:
            continue
        if p.is_file():
            out.append((p, rel, int(f.get("frame", 0) or 0)))
    return out


def remove_faces(faceset_dir: str | os.PathLike[str], files: Iterable[str]):
    """Remove crops a person marked as bad: delete their PNGs, drop their records, and add
    their names to ``Faceset.removed`` so extraction never re-adds them. ``faceset.json`` is
    rewritten atomically (before any PNG is deleted). Returns the new Faceset.

    ``files`` are crop names as stored (``faces/x.png``) or bare file names (``x.png``).
    Unknown names raise BadInput and nothing changes.
    """
    from facedub.faceset import load_faceset, save_faceset

    folder = Path(faceset_dir)
    fs = load_faceset(folder)
    by_name: dict[str, str] = {}
    for face in fs.faces:
        by_name[face.file] = face.file
        by_name.setdefault(Path(face.file).name, face.file)
    wanted: list[str] = []
    for f in files:
        key = str(f)
        if key not in by_name:
            raise BadInput(f"{folder}: no face named {key!r} in this faceset")
        if by_name[key] not in wanted:
            wanted.append(by_name[key])
    if not wanted:
        return fs
    gone = set(wanted)
    removed = tuple(fs.removed) + tuple(w for w in wanted if w not in fs.removed)
    new = replace(fs, faces=tuple(f for f in fs.faces if f.file not in gone), removed=removed)
    save_faceset(new, folder)
    for w in wanted:
        try:
            safe_join(folder, w).unlink(missing_ok=True)
        except (BadInput, OSError):
            pass
    return new
