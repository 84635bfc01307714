"""Read and write facesets. ``faceset.json`` is written atomically; crops are PNG."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from facedub.errors import BadInput
from facedub.faceset.schema import Faceset
from facedub.fileio import write_json

FACESET_JSON = "faceset.json"


def load_faceset(path: str | os.PathLike[str]) -> Faceset:
    """Load a faceset folder (or its faceset.json). Raises BadInput with a one-line reason."""
    p = Path(path)
    js = p / FACESET_JSON if p.is_dir() else p
    if not p.exists():
        raise BadInput(f"{p}: no such faceset")
    if not js.is_file():
        raise BadInput(f"{p}: not a faceset (no {FACESET_JSON})")
    try:
        data = json.loads(js.read_text(encoding="utf-8"))
        return Faceset.from_dict(data)
    except (ValueError, TypeError, KeyError) as e:
        raise BadInput(f"{js}: corrupt faceset ({str(e).splitlines()[0]})") from None


def save_faceset(faceset: Faceset, folder: str | os.PathLike[str]) -> None:
    """Atomically (re)write ``folder/faceset.json``."""
    write_json(Path(folder) / FACESET_JSON, faceset.to_dict(), indent=None)


def faceset_dir(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.parent if p.name == FACESET_JSON else p


def load_crop(folder: str | os.PathLike[str], file: str) -> np.ndarray:
    """Load one RGB uint8 crop of a faceset."""
    from PIL import Image

    with Image.open(Path(folder) / file) as im:
        return np.asarray(im.convert("RGB"))


FACES_DIR = "faces"


def crop_path(folder: str | os.PathLike[str], file: str) -> Path:
    """Absolute path of a crop named in a FaceRecord."""
    return Path(folder) / file


def faceset_exists(folder: str | os.PathLike[str]) -> bool:
    return (Path(folder) / FACESET_JSON).is_file()


def orphan_crops(faceset: Faceset, folder: str | os.PathLike[str]) -> list[Path]:
    """PNG files under ``faces/`` that ``faceset.json`` does not reference (left over by an
    interrupted run or dropped by the identity filter)."""
    d = Path(folder) / FACES_DIR
    if not d.is_dir():
        return []
    used = {Path(f.file).name for f in faceset.faces}
    return sorted(p for p in d.glob("*.png") if p.name not in used)
