"""The web app's form fields × bad paths, through the page's own handlers (called directly):
each refusal is one plain message naming the path, starts no job, and leaves every input
byte-for-byte unchanged and nothing new on disk."""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio", reason="gradio (facedub[ui]) not installed")

from facedub.project import create_project, open_project  # noqa: E402
from facedub.ui.app import build_app  # noqa: E402
from facedub.ui.jobs import JobManager  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


_bad_paths = _load("cli_bad_paths_helpers", TESTS / "cli" / "test_bad_paths.py")
ReadOnly, snapshot, clip = _bad_paths.ReadOnly, _bad_paths._snapshot, _bad_paths._clip


class Page:
    """The handlers of one built app, found by name and by the elem_id of one of their inputs."""

    def __init__(self, root: Path) -> None:
        self.jobs = JobManager()
        self.app = build_app(root, self.jobs)

    def handler(self, name: str, elem_id: str | None = None):
        for bf in self.app.fns.values():
            if getattr(bf.fn, "__name__", None) != name:
                continue
            if elem_id is None or any(getattr(i, "elem_id", None) == elem_id for i in bf.inputs):
                return bf.fn
        raise LookupError(name)


def _message(result) -> tuple[bool, str]:
    last = result[-1] if isinstance(result, tuple) else result
    assert isinstance(last, str), result
    return 'class="fd-msg err"' in last, html.unescape(last)


@pytest.fixture()
def setup(tmp_path: Path):
    """A projects root with project 'p' (model, inputs, a result) beside the user's own files."""
    tiny = _load("tinymodel_ui_badpaths", TESTS / "convert" / "tinymodel.py")
    ff = _load("fakefaces_ui_badpaths", TESTS / "train" / "fakefaces.py")
    root = tmp_path / "projects"
    p = create_project(root, "p")
    user = tmp_path / "user"
    user.mkdir()
    video = clip(user / "target.mp4", 6)
    source = clip(user / "source.mp4", 6, seed=5)
    tiny.save_untrained_lite(p.model_dir)
    ff.make_faceset(p.faceset_dir("source"), "alice", n=3, seed=0)
    clip(p.result_path, 4, seed=9)  # a result rendered earlier
    other_fs = ff.make_faceset(tmp_path / "user" / "fs", "bob", n=3, seed=1)
    from facedub.project import set_inputs

    set_inputs(set_inputs(p, "source", [source]), "target", [video])
    return {"root": root, "project": open_project(root, "p"), "user": user, "video": video, "source": source, "other_fs": other_fs,
            "page": Page(root), "tmp": tmp_path}


def _hashes(*paths: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _refused(setup, result, shown: str, *words: str) -> str:
    is_err, text = _message(result)
    assert is_err, text
    assert shown in text, (shown, text)
    for w in words:
        assert w in text, (w, text)
    assert "\n" not in text.strip()
    assert setup["page"].jobs.active(setup["project"].root) is None  # no job started
    return text


def test_typed_input_paths(setup) -> None:
    """'…or a path on this computer': a path that is one of the project's own files is refused."""
    p, tmp = setup["project"], setup["tmp"]
    on_use = setup["page"].handler("on_use", "target-path")
    os.symlink(p.result_path, tmp / "link.mp4")
    os.link(p.result_path, tmp / "hard.mp4")
    crop = next((p.faceset_dir("source") / "faces").iterdir())
    cases = [
        (str(p.result_path), "output/"),
        (str(p.root / "output" / ".." / "output" / "result.mp4"), "output/"),
        (str(tmp / "link.mp4"), "output/"),  # resolves into the project
        (str(tmp / "hard.mp4"), "result.mp4"),  # the same inode as the result
        (str(p.faceset_dir("source")), "facesets/"),
        (str(crop), "facesets/"),
        (str(p.model_dir / "weights.safetensors"), "model/"),
        (str(setup["other_fs"]), "faceset folder"),
        (str(tmp / "no" / "such.mp4"), "no such file"),
        (str(tmp / ("n" * 250 + ".mp4")), "no such file"),
    ]
    for path, words in cases:
        before = snapshot(setup["root"], setup["user"])
        proj = (p.root / "project.json").read_bytes()
        _refused(setup, on_use("p", None, path), path, words)
        assert (p.root / "project.json").read_bytes() == proj
        assert snapshot(setup["root"], setup["user"]) == before


def test_project_names(setup) -> None:
    on_create = setup["page"].handler("on_create")
    root = setup["root"]
    (root / "plain").mkdir()
    (root / "plain" / "notes.txt").write_text("mine")
    ff = _load("fakefaces_ui_badpaths", TESTS / "train" / "fakefaces.py")
    ff.make_faceset(root / "afaceset", "bob", n=2, seed=1)
    for name, words in [("../escape", "not a usable project name"), ("a/b", "not a usable project name"),
                        ("n" * 250, "not a usable project name"), ("plain", "not a facedub project"),
                        ("afaceset", "not a facedub project")]:
        before = snapshot(root)
        _refused(setup, on_create(name), name[:40] if len(name) < 60 else name, words)
        assert snapshot(root) == before
    assert not (root.parent / "escape").exists()


def test_jobs_refuse_outputs_that_are_inputs(setup) -> None:
    """A target recorded earlier that is (a hard link to) the project's own result: Render and
    Preview refuse before any job starts; the result is untouched."""
    p, tmp = setup["project"], setup["tmp"]
    os.link(p.result_path, tmp / "user" / "hard.mp4")
    js = p.root / "project.json"
    d = json.loads(js.read_text())
    for target in (str(p.result_path), str(tmp / "user" / "hard.mp4")):
        d["inputs"]["target"] = [target]
        js.write_text(json.dumps(d))
        before = snapshot(setup["root"], setup["user"])
        result = _hashes(p.result_path)
        render = setup["page"].handler("on_render")
        _refused(setup, render("p", "learned-hull", "reinhard", "alpha", 0.1, 0.0), target)
        preview = setup["page"].handler("on_preview")
        _refused(setup, preview("p", "learned-hull", "reinhard", "alpha", 0.1, 0.0, 0), target)
        extract = setup["page"].handler("on_extract", None)
        _refused(setup, extract("p", 1, 0), target)
        assert _hashes(p.result_path) == result
        assert snapshot(setup["root"], setup["user"]) == before


def test_read_only_project_folders(setup) -> None:
    """The project's output or consent folder cannot be written: refused when the button is
    pressed (one message naming the path), not after the job ran."""
    p = setup["project"]
    import shutil

    for sub, press in (("output", lambda pg: pg.handler("on_render")("p", "learned-hull", "reinhard", "alpha", 0.1, 0.0)),
                       ("consent", lambda pg: pg.handler("on_consent", "source-subject")("p", "A", "A", "tests", "", None, True))):
        folder = p.root / sub
        keep = setup["tmp"] / f"keep-{sub}"
        shutil.move(folder, keep)
        with ReadOnly(folder):
            before = snapshot(setup["root"])
            _refused(setup, press(setup["page"]), str(folder), "cannot write")
            assert snapshot(setup["root"]) == before
        folder.rmdir()
        shutil.move(keep, folder)


def test_consent_evidence_paths(setup) -> None:
    on_consent = setup["page"].handler("on_consent", "source-subject")
    p = setup["project"]
    missing = str(setup["tmp"] / "no" / "release.pdf")
    _refused(setup, on_consent("p", "A", "A", "tests", "", missing, False), missing, "not found")
    assert not p.consent_path("source").exists()
    ev = setup["user"] / "release.txt"
    ev.write_text("I agree.")
    before = _hashes(ev)
    is_err, text = _message(on_consent("p", "A", "A", "tests", "", str(ev), False))
    assert not is_err, text
    assert _hashes(ev) == before and p.consent_path("source").is_file()


def test_a_folder_where_the_result_goes(setup) -> None:
    """Someone made output/result.mp4 a folder (or preview.png): Render and Preview refuse."""
    p = setup["project"]
    p.result_path.unlink()
    p.result_path.mkdir()
    (p.result_path / "keep.txt").write_text("mine")
    p.preview_path.mkdir()
    before = snapshot(setup["root"], setup["user"])
    render = setup["page"].handler("on_render")
    _refused(setup, render("p", "learned-hull", "reinhard", "alpha", 0.1, 0.0), str(p.result_path), "is a folder")
    preview = setup["page"].handler("on_preview")
    _refused(setup, preview("p", "learned-hull", "reinhard", "alpha", 0.1, 0.0, 0), str(p.preview_path), "is a folder")
    assert snapshot(setup["root"], setup["user"]) == before
