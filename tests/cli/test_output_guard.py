"""The output guard and atomic writes as plain functions: errors name the user's file, never a
temporary; temporary names are short; an input's own errors are not relabelled."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from facedub import fileio
from facedub.errors import BadInput
from facedub.outputs import check_output, same_file


def test_a_255_byte_name_is_written_through_a_short_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / ("x" * 251 + ".png")
    assert len(os.fsencode(target.name)) == 255
    seen = []
    real = fileio.os.replace

    def spy(a, b):  # noqa: ANN001
        seen.append(Path(a).name)
        return real(a, b)

    monkeypatch.setattr(fileio.os, "replace", spy)
    fileio.write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    assert len(seen) == 1 and len(os.fsencode(seen[0])) <= 32 and seen[0].endswith(".png")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_full_disk_names_the_target_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    def full(a, b):  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", str(a))

    monkeypatch.setattr(fileio.os, "replace", full)
    target = tmp_path / "out.json"
    with pytest.raises(BadInput) as e:
        fileio.write_json(target, {"a": 1})
    assert str(e.value) == f"{target}: cannot write (No space left on device)"
    assert isinstance(e.value, OSError)  # code that tolerates failed writes still catches it
    assert list(tmp_path.iterdir()) == []


def test_an_inputs_own_error_inside_a_write_is_not_relabelled(tmp_path: Path) -> None:
    src = tmp_path / "missing.mp4"
    with pytest.raises(FileNotFoundError) as e:
        with fileio.atomic_path(tmp_path / "out.mp4") as tmp:
            open(src, "rb")  # reading an input fails: that error keeps its own file name
    assert e.value.filename == str(src)
    assert list(tmp_path.iterdir()) == []


def test_same_file_sees_through_dotdot_symlinks_and_hard_links(tmp_path: Path) -> None:
    a = tmp_path / "a.mp4"
    a.write_bytes(b"x")
    (tmp_path / "s.mp4").symlink_to(a)
    os.link(a, tmp_path / "h.mp4")
    (tmp_path / "d").mkdir()
    for other in (tmp_path / "s.mp4", tmp_path / "h.mp4", tmp_path / "d" / ".." / "a.mp4"):
        assert same_file(other, a)
    (tmp_path / "b.mp4").write_bytes(b"x")
    assert not same_file(tmp_path / "b.mp4", a) and not same_file(tmp_path / "new.mp4", a)


def test_check_output_returns_the_path_and_writes_nothing(tmp_path: Path) -> None:
    inp = tmp_path / "in.mp4"
    inp.write_bytes(b"x")
    assert check_output(str(tmp_path / "out.mp4"), inputs=[inp]) == tmp_path / "out.mp4"
    assert check_output(tmp_path / "new" / "deeper" / "fs", kind="faceset", create_parents=True) == tmp_path / "new" / "deeper" / "fs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    with pytest.raises(BadInput, match="name too long"):
        check_output(tmp_path / ("y" * 256))
    with pytest.raises(BadInput, match="the path is empty"):
        check_output("")
