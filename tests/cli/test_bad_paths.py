"""Every command that writes × a matrix of bad output paths: exit 2, one line naming the path,
every input byte-for-byte unchanged and nothing new on disk.

Commands: extract (--out folder), faceset show --sheet, train --out (folder), convert --out,
eval --report, consent create --out, swap --out. ``verify`` writes nothing (no row).
Cells: a missing folder (or, for folder outputs, a path under a file: missing parents of a
folder output are created by design), a read-only folder, the output equal to each input,
a symbolic and a hard link to an input, a path inside a faceset and inside a model folder,
a folder where a file goes (a file where a folder goes), an existing folder of another kind,
``../`` spellings of an input, and a 250-byte name (legal: it must work, or be refused up
front when a file derived from it would be too long).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from tests.conftest import write_test_video

from facedub.cli import main

ROOT = Path(__file__).resolve().parents[1]
LONG = "n" * 246  # + ".png" / ".mp4" = 250 bytes


def _load(name: str, path: Path):
    import sys

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _clip(path: Path, n: int, seed: int = 0) -> Path:
    from facedub.media.writer import VideoWriter

    yy, xx = np.mgrid[0:48, 0:64]
    with VideoWriter(path, 64, 48, 25) as wr:
        for i in range(n):
            wr.write(np.stack([(xx * 4 + i * 8 + seed) % 256, (yy * 4) % 256, np.full_like(xx, (i * 20) % 256)], -1).astype(np.uint8))
    return path


@dataclass
class World:
    root: Path
    video: Path  # target of convert and swap; output video of eval
    video2: Path  # eval's target, swap's source
    image: Path  # extract's input
    fs: Path  # a faceset (alice)
    fs2: Path  # a faceset (bob)
    model: Path
    consent: Path
    evidence: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from PIL import Image

    from facedub.safety.consent import create_consent, save_consent

    root = tmp_path_factory.mktemp("world")
    ff = _load("fakefaces_badpaths", ROOT / "train" / "fakefaces.py")
    tiny = _load("tinymodel_badpaths", ROOT / "convert" / "tinymodel.py")
    fs = ff.make_faceset(root / "fs", "alice", n=24, seed=0)
    fs2 = ff.make_faceset(root / "fs2", "bob", n=24, seed=1)
    model = tiny.save_untrained_lite(root / "model")
    video = _clip(root / "in.mp4", 6)
    video2 = _clip(root / "in2.mp4", 6, seed=3)
    image = root / "img.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    consent = root / "consent.json"
    save_consent(create_consent("aiface", "facedub tests", "tests", synthetic=True), consent)
    evidence = root / "release.txt"
    evidence.write_text("I agree.")
    return World(root, video, video2, image, fs, fs2, model, consent, evidence)


@dataclass
class Command:
    name: str
    kind: str  # "file" or "folder"
    ext: str  # extension of a file output
    argv: Callable[[World, str], list[str]]
    inputs: Callable[[World], list[Path]]  # input files the output could be mistaken for
    long_ok: bool  # a 250-byte name works (False: refused up front, a derived name is too long)


TINY_TRAIN = ["--arch", "lite", "--size", "32", "--width", "0.25", "--batch-size", "4", "--threads", "1", "--precision", "fp32", "--steps", "1", "--preview-every", "0"]

COMMANDS = [
    Command("extract", "folder", "", lambda w, o: ["extract", str(w.image), "--out", o, "--consent", str(w.consent)],
            lambda w: [w.image, w.consent], True),
    Command("faceset-show", "file", ".png", lambda w, o: ["faceset", "show", str(w.fs), "--sheet", o],
            lambda w: [w.fs / "faceset.json", w.fs / "faces" / "s00_f000000_0.png"], True),
    Command("train", "folder", "", lambda w, o: ["train", "--source", str(w.fs), "--target", str(w.fs2), "--out", o, *TINY_TRAIN],
            lambda w: [w.fs / "faceset.json", w.fs2 / "faceset.json"], True),
    Command("convert", "file", ".mp4", lambda w, o: ["convert", str(w.video), "--model", str(w.model), "--out", o],
            lambda w: [w.video, w.model / "weights.safetensors", w.model / "model.json"], False),
    Command("eval", "file", ".html", lambda w, o: ["eval", str(w.video), "--target", str(w.video2), "--source", str(w.fs), "--report", o, "--every", "3"],
            lambda w: [w.video, w.video2, w.fs / "faceset.json"], True),
    Command("consent-create", "file", ".json", lambda w, o: ["consent", "create", "--subject", "A", "--granted-by", "A", "--scope", "s",
                                                             "--evidence", str(w.evidence), "--out", o],
            lambda w: [w.evidence], True),
    Command("swap", "file", ".mp4", lambda w, o: ["swap", "--source", str(w.video2), "--target", str(w.video), "--out", o,
                                                  "--source-consent", str(w.consent), "--target-consent", str(w.consent), "--steps", "1"],
            lambda w: [w.video2, w.video, w.consent], False),
]
BY_NAME = {c.name: c for c in COMMANDS}


def _snapshot(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for d in dirnames:
                out[os.path.join(dirpath, d)] = "dir"
            for f in filenames:
                p = os.path.join(dirpath, f)
                out[p] = "link->" + os.readlink(p) if os.path.islink(p) else hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


class ReadOnly:
    """A folder nothing can be written in, for the user running the tests: permission bits for
    a normal user; for root (whom permission bits do not stop) the ext2/3/4 immutable flag."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.how = None

    def __enter__(self) -> Path:
        self.folder.mkdir()
        if os.geteuid() != 0:
            self.folder.chmod(0o500)
            self.how = "chmod"
        elif shutil.which("chattr") and subprocess.run(["chattr", "+i", str(self.folder)], capture_output=True).returncode == 0:
            self.how = "chattr"
        else:
            pytest.skip("running as root on a file system without the immutable flag: no way to make a read-only folder")
        try:  # make sure it really is read-only
            (self.folder / "probe").write_bytes(b"")
        except OSError:
            return self.folder
        (self.folder / "probe").unlink()
        self.__exit__()
        pytest.skip(f"{self.how} did not make {self.folder} read-only here")

    def __exit__(self, *exc: object) -> None:
        if self.how == "chmod":
            self.folder.chmod(0o700)
        elif self.how == "chattr":
            subprocess.run(["chattr", "-i", str(self.folder)], capture_output=True)
        self.how = None


def _cells() -> list[tuple[str, str]]:
    cells = []
    for c in COMMANDS:
        for cell in ("missing_folder", "read_only", "symlink", "hardlink", "dotdot", "inside_faceset", "inside_model",
                     "wrong_type", "long_name"):
            cells.append((c.name, cell))
        for i in range(len(c.inputs(World(*[Path("/x")] * 9)))):
            cells.append((c.name, f"input{i}"))
        if c.kind == "folder":
            cells.append((c.name, "other_kind"))
    return cells


def _out_path(cell: str, c: Command, w: World, tmp: Path) -> tuple[str, str | None]:
    """(output path as typed, expected words in the message or None when the run may succeed)."""
    inputs = c.inputs(w)
    name = "out" + c.ext
    if cell == "missing_folder":
        if c.kind == "folder":  # parents of a folder output are created; a FILE in the way is not
            (tmp / "afile").write_text("x")
            return str(tmp / "afile" / "sub" / "out"), "not a folder"
        return str(tmp / "no-such-folder" / name), "does not exist"
    if cell.startswith("input"):
        return str(inputs[int(cell[5:])]), None if False else ""
    if cell == "symlink":
        link = tmp / ("link" + (inputs[0].suffix if c.kind == "file" else ""))
        link.symlink_to(inputs[0])
        return str(link), ""
    if cell == "hardlink":
        hard = tmp / ("hard" + (inputs[0].suffix if c.kind == "file" else ""))
        os.link(inputs[0], hard)
        return str(hard), ""
    if cell == "dotdot":
        p = inputs[0]
        return str(p.parent / ".." / p.parent.name / p.name), ""
    if cell == "inside_faceset":
        return str(w.fs2 / ("faces/new" + c.ext if c.kind == "file" else "sub")), "inside"
    if cell == "inside_model":
        return str(w.model / ("previews/new" + c.ext if c.kind == "file" else "sub")), "inside"
    if cell == "wrong_type":
        if c.kind == "file":
            (tmp / "afolder").mkdir()
            return str(tmp / "afolder"), "folder"
        (tmp / "afile").write_text("x")
        return str(tmp / "afile"), "not a folder"
    if cell == "other_kind":
        return (str(w.model) if c.name == "extract" else str(w.fs2)), "folder"
    raise AssertionError(cell)


def _one_line(err: str, shown: str, words: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("facedub: error: "), lines[0]
    assert shown in lines[0], (shown, lines[0])
    assert words in lines[0], (words, lines[0])
    return lines[0]


@pytest.mark.parametrize("command, cell", _cells())
def test_bad_output_path(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, cell: str) -> None:
    c = BY_NAME[command]
    if cell == "long_name":
        _long_name(world, tmp_path, capsys, c)
        return
    ro = ReadOnly(tmp_path / "ro")
    with ro if cell == "read_only" else _null():
        if cell == "read_only":
            out, words = str(tmp_path / "ro" / ("out" + c.ext)), "cannot write"
        else:
            out, words = _out_path(cell, c, world, tmp_path)
        before = _snapshot(world.root, tmp_path)
        inputs_before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in c.inputs(world)}
        rc = main(["--quiet", *c.argv(world, out)])
        err = capsys.readouterr().err
        assert rc == 2, err
        _one_line(err, out, words or "")
        assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in c.inputs(world)} == inputs_before
        assert _snapshot(world.root, tmp_path) == before  # nothing new, nothing changed


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _long_name(world: World, tmp: Path, capsys: pytest.CaptureFixture[str], c: Command) -> None:
    out = tmp / (LONG + c.ext)
    assert len(os.fsencode(out.name)) == 246 + len(c.ext)
    inputs_before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in c.inputs(world)}
    before = _snapshot(world.root)
    rc = main(["--quiet", *c.argv(world, str(out))])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in c.inputs(world)} == inputs_before
    if not c.long_ok:  # OUT.mp4.facedub.json would pass 255 bytes: refused before any work
        assert rc == 2
        _one_line(err, str(out), "name too long")
        assert list(tmp.iterdir()) == []
        return
    if c.name == "extract":  # a flat grey image holds no face: refused for THAT, the path was fine
        assert rc == 2
        _one_line(err, str(world.image), "no usable faces")
        assert not out.exists(), "a refused extract leaves no folder behind"
        return
    assert rc == 0, err
    assert out.exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith(".")], "no temporary file left"
    after = _snapshot(world.root)
    assert after == before


def test_no_empty_faces_folder_after_a_refused_extract(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    for argv in (["extract", str(world.image), "--out", str(tmp_path / "a" / "b" / "fs")],  # no faces
                 ["extract", str(world.image), "--out", str(tmp_path / "fs"), "--consent", str(tmp_path / "bad.json")]):
        assert main(["--quiet", *argv]) == 2
        capsys.readouterr()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]
