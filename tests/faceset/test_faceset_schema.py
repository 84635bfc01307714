"""Faceset records: JSON round-trip, defaults of added fields, loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.faceset import FaceRecord, Faceset, SourceRecord, load_faceset, save_faceset
from facedub.faceset.store import orphan_crops


def make_faceset(n: int = 3, descriptor: bool = True) -> Faceset:
    rng = np.random.default_rng(0)
    faces = []
    for i in range(n):
        lm = rng.uniform(0, 500, (68, 2)).round(2)
        faces.append(
            FaceRecord(
                file=f"faces/abc_f{i:07d}_0.png",
                source=0,
                frame=i,
                time=i / 25,
                bbox=(1.5, 2.0, 100.25, 120.0),
                landmarks=tuple((float(x), float(y)) for x, y in lm),
                affine=((0.5, -0.1, 3.0), (0.1, 0.5, -4.25)),
                det_score=0.93,
                sharpness=123.4,
                descriptor=tuple(float(v) for v in rng.normal(0, 0.1, 128)) if descriptor and i == 0 else None,
                pose=(1.0, -2.0, 3.5),
                track=i % 2,
            )
        )
    return Faceset(
        id="fs-test",
        sources=(SourceRecord(path="/x/v.mp4", sha256="ab" * 32, kind="video", frames=10, fps=25.0, width=640, height=480, done_until=9, complete=True),),
        faces=tuple(faces),
        settings={"every": 1, "nested": {"a": [1, 2]}},
        consent={"id": "c1", "subject": "someone"},
        removed=("faces/abc_f0000009_0.png",),
        created="2026-01-01T00:00:00Z",
        tool_version="0.1.0",
    )


def test_round_trip_through_json(tmp_path: Path) -> None:
    fs = make_faceset()
    save_faceset(fs, tmp_path)
    raw = json.loads((tmp_path / "faceset.json").read_text())
    assert raw["schema_version"] == 1 and "pickle" not in (tmp_path / "faceset.json").read_text()
    back = load_faceset(tmp_path)
    assert back == fs
    assert back.faces[0].landmarks_array().shape == (68, 2)
    assert back.faces[0].affine_array().shape == (2, 3)
    assert back.faces[0].descriptor_array().shape == (128,)
    assert back.faces[1].descriptor_array() is None


def test_added_source_fields_have_defaults() -> None:
    d = make_faceset().to_dict()
    for s in d["sources"]:
        del s["done_until"], s["complete"]
    back = Faceset.from_dict(d)
    assert back.sources[0].done_until == -1 and back.sources[0].complete is True


def test_load_errors_are_one_line_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such faceset"):
        load_faceset(tmp_path / "nope")
    with pytest.raises(BadInput, match="not a faceset"):
        load_faceset(tmp_path)
    (tmp_path / "faceset.json").write_text("{ not json")
    with pytest.raises(BadInput, match="corrupt"):
        load_faceset(tmp_path)
    d = make_faceset().to_dict()
    d["schema_version"] = 99
    (tmp_path / "faceset.json").write_text(json.dumps(d))
    with pytest.raises(BadInput, match="schema version"):
        load_faceset(tmp_path)


def test_orphan_crops(tmp_path: Path) -> None:
    fs = make_faceset(2)
    (tmp_path / "faces").mkdir()
    for name in ("abc_f0000000_0.png", "abc_f0000001_0.png", "stray.png"):
        (tmp_path / "faces" / name).write_bytes(b"x")
    assert [p.name for p in orphan_crops(fs, tmp_path)] == ["stray.png"]


def test_to_dict_is_what_asdict_gives_and_owns_its_mutable_parts() -> None:
    from dataclasses import asdict, replace

    fs = replace(make_faceset(4), settings={"every": 1, "nested": {"a": [1, 2]}}, consent={"id": "c1", "subject": "x", "scopes": ["train"]})
    d = fs.to_dict()
    assert d == asdict(fs)
    assert json.dumps(d) == json.dumps(asdict(fs))
    d["settings"]["nested"]["a"].append(3)  # the copy is the caller's: the faceset is unchanged
    d["consent"]["scopes"].clear()
    assert fs.settings["nested"]["a"] == [1, 2] and fs.consent["scopes"] == ["train"]
    assert Faceset.from_dict(json.loads(json.dumps(fs.to_dict()))) == fs
