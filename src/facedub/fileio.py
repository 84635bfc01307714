"""Atomic file writes: write a temporary file beside the target, then rename over it.

A crash or Ctrl-C leaves either the old file or the new one, never half of either.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from facedub.errors import BadInput

# mkstemp creates files readable by the owner only; give written files the usual mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``target`` on success.

    The temporary name keeps the target's extension (``suffix``) so that writers that pick a
    format from the name (PIL, PyAV) still work. It is short and of fixed length
    (``.fd`` + 8 random characters + ``.part`` + the extension, at most 32 bytes), so any
    target name the file system accepts can be written.

    An OS error about the target or the temporary file (a missing or read-only folder, a
    full disk, a name too long) becomes a BadInput naming ``target``, never the temporary.
    """
    target = Path(target)
    suffix = target.suffix if suffix is None else suffix
    if len(os.fsencode(suffix)) > MAX_SUFFIX:
        suffix = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fd", suffix=f".part{suffix}", dir=target.parent)
    except OSError as e:
        raise _output_error(target, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, target)
    except OSError as e:
        if _about(e, tmp_path, target):
            raise _output_error(target, e) from None
        raise
    finally:
        try:
            if tmp_path.exists():
                tmp_path.unlink()
        except OSError:
            pass


MAX_SUFFIX = 16  # longest extension kept in a temporary name (bytes)


def _about(e: OSError, *paths: Path) -> bool:
    """Whether an OSError concerns one of ``paths`` (or names no file: a full disk, a quota)."""
    names = {str(p) for p in paths}
    named = [f for f in (e.filename, getattr(e, "filename2", None)) if f is not None]
    if not named:
        return True
    return any(str(f) in names or os.fsdecode(f) in names if isinstance(f, (str, bytes)) else False for f in named)


class OutputError(BadInput, OSError):
    """An OS error met writing an output, as one line naming the output (exit 2). Still an
    OSError, so code that tolerates failed writes (a job's progress file) keeps doing so."""


def _output_error(target: Path, e: OSError) -> OutputError:
    why = e.strerror or str(e)
    if e.errno == errno.ENAMETOOLONG:
        why = "name too long"
    elif e.errno == errno.EISDIR:
        why = "is a folder"
    err = OutputError(f"{target}: cannot write ({why})")
    err.errno = e.errno
    return err


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json(target: str | os.PathLike[str], obj: Any, indent: int | None = 1) -> None:
    write_bytes(target, (json.dumps(obj, indent=indent, ensure_ascii=False) + "\n").encode("utf-8"))


def write_png(target: str | os.PathLike[str], rgb: np.ndarray, compress_level: int = 1) -> None:
    """Write an RGB (H×W×3) or grey (H×W) uint8 array as PNG, atomically."""
    from PIL import Image

    with atomic_path(target, ".png") as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG", compress_level=compress_level)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """A TOML file as a dict; BadInput naming the file and ``what`` it should be when it is
    missing, unreadable or not TOML (job files, dataset specs)."""
    import tomllib

    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{p}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{p}: cannot read the {what} ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{p}: not a valid TOML {what} ({e})") from None
