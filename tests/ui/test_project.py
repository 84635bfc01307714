"""Project folders: layout, names, traversal, uploads, removing faces from a faceset."""

from __future__ import annotations

import json

import pytest

from facedub.errors import BadInput
from facedub.faceset import FaceRecord, Faceset, load_faceset, save_faceset
from facedub.project import (
    ROLES,
    create_project,
    faceset_crops,
    import_upload,
    list_projects,
    open_project,
    remove_faces,
    safe_join,
    sanitize_filename,
    set_inputs,
)


def test_create_open_list(tmp_path):
    p = create_project(tmp_path, "demo one")
    for sub in ("consent", "inputs/source", "inputs/target", "facesets", "model", "output", "jobs"):
        assert (p.root / sub).is_dir(), sub
    assert json.loads((p.root / "project.json").read_text())["name"] == "demo one"
    again = open_project(tmp_path, "demo one")
    assert again.root == p.root and again.created == p.created
    create_project(tmp_path, "b")
    (tmp_path / "not-a-project").mkdir()
    assert [q.name for q in list_projects(tmp_path)] == ["b", "demo one"]
    assert p.consent_path("source") == p.root / "consent" / "source.json"
    assert p.faceset_dir("target") == p.root / "facesets" / "target"
    assert p.summary()["consent"] == {"source": False, "target": False}


@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", ".hidden", "x" * 65, "a\\b", "/abs", "a..b"])
def test_bad_project_names(tmp_path, name):
    with pytest.raises(BadInput):
        create_project(tmp_path, name)
    with pytest.raises(BadInput):
        open_project(tmp_path, name)


def test_open_non_project_and_bad_role(tmp_path):
    with pytest.raises(BadInput, match="not a facedub project"):
        open_project(tmp_path)
    p = create_project(tmp_path, "p")
    with pytest.raises(BadInput):
        p.faceset_dir("../../etc")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(BadInput, match="not a facedub project"):
        create_project(tmp_path, "junk")


def test_safe_join_and_sanitize(tmp_path):
    assert safe_join(tmp_path, "a", "b.png") == (tmp_path / "a" / "b.png").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x"):
        with pytest.raises(BadInput):
            safe_join(tmp_path, bad)
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(BadInput):
        safe_join(tmp_path, "link", "passwd")
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("..\\..\\win.ini") == "win.ini"
    assert sanitize_filename(".bashrc") == "bashrc"
    assert sanitize_filename("my video (1).mp4") == "my_video_1_.mp4"
    assert sanitize_filename("..") == "file"


def test_inputs_and_upload(tmp_path):
    p = create_project(tmp_path / "root", "p")
    up = tmp_path / "upload.mp4"
    up.write_bytes(b"abc")
    dest = import_upload(p, "source", up, "../../evil name.mp4")
    assert dest.parent == p.inputs_dir("source") and dest.name == "evil_name.mp4"
    dest2 = import_upload(p, "source", up, "evil name.mp4")
    assert dest2.name == "evil_name-1.mp4" and dest2.read_bytes() == b"abc"
    p2 = set_inputs(p, "source", [dest])
    assert open_project(p.root).input_files("source") == (str(dest),)
    assert p2.input_files("target") == ()
    with pytest.raises(BadInput, match="no such file"):
        set_inputs(p, "target", [tmp_path / "missing.mp4"])


def _faceset(folder, n=4):
    from facedub.fileio import write_png
    import numpy as np

    (folder / "faces").mkdir(parents=True)
    faces = []
    for i in range(n):
        f = f"faces/f{i}.png"
        write_png(folder / f, np.full((8, 8, 3), i * 40, np.uint8))
        faces.append(FaceRecord(file=f, source=0, frame=i, time=i / 25, bbox=(0, 0, 1, 1), landmarks=((0.0, 0.0),) * 68,
                                affine=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), det_score=0.9, sharpness=10.0))
    save_faceset(Faceset(id="x", faces=tuple(faces)), folder)


def test_remove_faces(tmp_path):
    fs_dir = tmp_path / "fs"
    _faceset(fs_dir)
    assert [(r, fr) for _, r, fr in faceset_crops(fs_dir)] == [(f"faces/f{i}.png", i) for i in range(4)]
    new = remove_faces(fs_dir, ["faces/f1.png", "f3.png"])
    assert [f.file for f in new.faces] == ["faces/f0.png", "faces/f2.png"]
    loaded = load_faceset(fs_dir)
    assert loaded.removed == ("faces/f1.png", "faces/f3.png")
    assert len(loaded.faces) == 2
    assert not (fs_dir / "faces/f1.png").exists() and (fs_dir / "faces/f0.png").exists()
    with pytest.raises(BadInput, match="no face named"):
        remove_faces(fs_dir, ["../faceset.json"])
    assert (fs_dir / "faceset.json").exists() and len(load_faceset(fs_dir).faces) == 2
    assert not list(fs_dir.glob(".*part*"))
    assert set(ROLES) == {"source", "target"}
