"""The one guard every command runs on its output paths before any work starts.

:func:`check_output` refuses (BadInput → exit 2, one line naming the path as the user typed
it, nothing written) an output that

* is, or resolves to, one of the command's inputs — the same path, through ``../``, a
  symbolic link or a hard link (same device and inode);
* lies inside a faceset or model folder the command does not own (``--sheet FS/faceset.json``,
  ``--report MODEL/weights.safetensors``, ``train --out FACESET/model``);
* is an existing folder of another kind (``train --out EXISTING_FACESET``), a folder where a
  file is wanted, or a file where a folder is wanted;
* sits in a folder that is missing, is not a folder, or cannot be written (a read-only
  folder or mount; checked by creating and removing a short-named probe file);
* has a name too long for the file system, counting the files the command derives from it
  (``OUT.mp4.facedub.json``).

Temporary files (:mod:`facedub.fileio`) use short fixed-length names, so any name that
passes here can be written.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Literal

from facedub.errors import BadInput

Kind = Literal["file", "faceset", "model", "project"]

# The file that marks a folder of each kind (a faceset holds faceset.json, and so on).
MARKERS: dict[str, str] = {"faceset": "faceset.json", "model": "model.json", "project": "project.json"}
NAME_MAX_DEFAULT = 255
PATH_MAX_DEFAULT = 4096


def folder_kind(folder: str | os.PathLike[str]) -> str | None:
    """"faceset", "model" or "project" when ``folder`` holds that kind's marker file, else None."""
    p = Path(folder)
    for kind, marker in MARKERS.items():
        try:
            if (p / marker).is_file():
                return kind
        except OSError:
            continue
    return None


def _resolve(p: Path) -> Path:
    try:
        return p.expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return p.expanduser().absolute()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file: equal once resolved, or the same inode."""
    pa, pb = Path(a), Path(b)
    if _resolve(pa) == _resolve(pb):
        return True
    try:
        sa, sb = os.stat(pa), os.stat(pb)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX_DEFAULT


def _nearest_existing(p: Path) -> Path:
    q = p
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def _owner_folders(p: Path) -> Iterable[tuple[Path, str]]:
    """(folder, kind) of every faceset/model folder above ``p`` (nearest first)."""
    for anc in p.parents:
        k = folder_kind(anc)
        if k in ("faceset", "model"):
            yield anc, k


def _probe(folder: Path, shown: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"{shown}: cannot write in {folder} (permission denied)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fd", suffix=".probe", dir=folder)
    except OSError as e:
        raise BadInput(f"{shown}: cannot write in {folder} ({e.strerror or e})") from None
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:
        pass


_CROP_NAME = re.compile(r"^[0-9a-f]{12}_f\d{7}_\d+\.png$")  # extract's crop names


def _foreign_crops(faces: Path) -> str | None:
    """The first file in ``faces`` that is not named like extract's crops (they are removed
    when no faceset lists them), or None."""
    if not faces.is_dir():
        return None
    for q in sorted(faces.iterdir()):
        if not _CROP_NAME.match(q.name) and not q.name.startswith(".fd"):
            return q.name
    return None


def check_output(path: str | os.PathLike[str], **kw: object) -> Path:
    """Check the output ``path`` of a command before any work; see :func:`_check_output` for
    the options. Raises BadInput (one line naming the path) for every problem."""
    try:
        return _check_output(path, **kw)  # type: ignore[arg-type]
    except BadInput:
        raise
    except OSError as e:  # a folder on the way that cannot be searched, a symlink loop
        raise BadInput(f"{path}: cannot check this path ({e.strerror or e})") from None


def _check_output(
    path: str | os.PathLike[str],
    *,
    kind: Kind = "file",
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    allowed: Iterable[str | os.PathLike[str]] = (),
    derived: Iterable[str] = (),
    what: str = "output",
    create_parents: bool = False,
    resume_ok: bool = True,
) -> Path:
    """Check the output ``path`` of a command; return it as a Path. Raises BadInput.

    ``kind``: "file", or the kind of folder written ("faceset", "model", "project").
    ``inputs``: every input path of the same command (files or folders; None is skipped).
    ``allowed``: exact paths inside a faceset or model folder this command owns (the default
    contact sheet ``FACESET/contact_sheet.png``).
    ``derived``: suffixes of files written beside a file output (``".facedub.json"``).
    ``create_parents``: missing parent folders will be created (extract, train); otherwise
    the parent folder must exist.
    ``resume_ok``: an existing folder of the same kind may be written into (extract resumes,
    train --resume); when False it is refused.
    """
    shown = str(path)
    if not shown.strip():
        raise BadInput(f"{what}: the path is empty")
    p = Path(path).expanduser()
    if "\x00" in shown:
        raise BadInput(f"{shown!r}: a path cannot hold a NUL character")
    absolute = p if p.is_absolute() else Path.cwd() / p
    # --- names short enough for the file system, with what is derived from them ------------
    base = _nearest_existing(absolute.parent)
    name_max = _name_max(base if base.is_dir() else base.parent)
    for part in absolute.parts[1:]:
        if len(os.fsencode(part)) > name_max:
            raise BadInput(f"{shown}: name too long ({len(os.fsencode(part))} bytes; the file system allows {name_max})")
    for suffix in derived:
        n = len(os.fsencode(absolute.name + suffix))
        if n > name_max:
            raise BadInput(
                f"{shown}: name too long: {absolute.name[:20]}…{suffix} written beside it would be {n} bytes "
                f"(the file system allows {name_max}); choose a name at most {name_max - len(os.fsencode(suffix))} bytes long"
            )
    if len(os.fsencode(str(absolute))) >= PATH_MAX_DEFAULT:
        raise BadInput(f"{shown}: path too long")
    # --- the output itself -----------------------------------------------------------------
    resolved = _resolve(p)
    exists = os.path.lexists(p)
    if kind == "file":
        if p.is_dir():
            raise BadInput(f"{shown}: is a folder; give a file name")
    else:
        if exists and not p.is_dir():
            raise BadInput(f"{shown}: exists and is not a folder")
        if p.is_dir():
            found = folder_kind(p)
            if found is not None and found != kind:
                raise BadInput(f"{shown}: is a {found} folder, not a {kind} folder; choose another folder")
            if found == kind and not resume_ok:
                raise BadInput(f"{shown}: a {kind} already exists here")
            if kind == "faceset" and found is None:
                foreign = _foreign_crops(p / "faces")
                if foreign:
                    raise BadInput(
                        f"{shown}: its faces/ folder holds files facedub did not write ({foreign}); extract tidies "
                        "that folder, so choose a new folder"
                    )
    # --- not one of the inputs ---------------------------------------------------------------
    allowed_set = {_resolve(Path(a)) for a in allowed}
    for inp in inputs:
        if inp is None:
            continue
        ip = Path(inp).expanduser()
        if same_file(p, ip):
            raise BadInput(f"{shown}: would overwrite the input {inp}; choose another name")
        ir = _resolve(ip)
        if kind != "file" and ir.is_relative_to(resolved) and kind in ("faceset", "model"):
            raise BadInput(f"{shown}: the input {inp} is inside this output folder; choose another folder")
        if ip.is_dir() and resolved not in allowed_set and resolved.is_relative_to(ir) and folder_kind(ir) in ("faceset", "model"):
            raise BadInput(f"{shown}: is inside the input {folder_kind(ir)} {inp}; choose a path outside it")
    # --- not inside a faceset or model folder this command does not own ----------------------
    if resolved not in allowed_set:
        for folder, k in _owner_folders(resolved):
            raise BadInput(f"{shown}: is inside the {k} folder {folder}; facedub keeps its files there, choose a path outside it")
    # --- the folder it goes in: present and writable ------------------------------------------
    if kind != "file" and p.is_dir():
        _probe(p, shown)
        return p
    parent = absolute.parent
    if not parent.exists():
        anc = _nearest_existing(parent)
        if not create_parents:
            if anc.is_dir() or anc == anc.parent:
                raise BadInput(f"{shown}: cannot write there: folder {parent} does not exist")
        if not anc.is_dir():
            raise BadInput(f"{shown}: cannot write there: {anc} is not a folder")
        _probe(anc, shown)
        return p
    if not parent.is_dir():
        raise BadInput(f"{shown}: cannot write there: {parent} is not a folder")
    _probe(parent, shown)
    return p


def output_error(path: str | os.PathLike[str], e: OSError) -> BadInput:
    """The one-line BadInput for an OS error met while writing the output ``path``."""
    why = e.strerror or str(e)
    if e.errno == errno.ENAMETOOLONG:
        why = "name too long"
    return BadInput(f"{path}: cannot write ({why})")
