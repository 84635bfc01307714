"""The dataset spec: every identity needs a valid consent record; bad input is one line, exit 2,
and nothing is written."""

import json

import pytest

from facedub.cli import main
from facedub.dataset.spec import load_spec
from facedub.errors import BadInput
from facedub.safety.consent import create_consent, save_consent


def _consent(path, name="synthetic person"):
    save_consent(create_consent(name, "facedub tests", "dataset tests", synthetic=True), path)


def _spec(tmp_path, body):
    p = tmp_path / "spec.toml"
    p.write_text(body)
    return p


PAIR = """
[[pairs]]
source = "a"
target = "b"
model = "model"
clips = ["clip.mp4"]
"""


def test_identity_without_consent_record_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    _consent(tmp_path / "a.json")
    spec = _spec(tmp_path, '[identities.a]\nconsent = "a.json"\n' + PAIR)
    out = tmp_path / "ds"
    assert main(["dataset", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(spec) in err[0] and "'b'" in err[0] and "consent" in err[0]
    assert not out.exists() and not (tmp_path / ".ds.partial").exists()


def test_missing_consent_file_is_named(tmp_path, capsys):
    _consent(tmp_path / "a.json")
    spec = _spec(tmp_path, '[identities.a]\nconsent = "a.json"\n[identities.b]\nconsent = "nope/b.json"\n' + PAIR)
    assert main(["dataset", str(spec), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nope" / "b.json") in err and "consent file not found" in err
    assert not (tmp_path / "ds").exists()


def test_edited_consent_record_is_refused(tmp_path):
    _consent(tmp_path / "a.json")
    d = json.loads((tmp_path / "a.json").read_text())
    d["scope"] = "anything at all"
    (tmp_path / "b.json").write_text(json.dumps(d))
    spec = _spec(tmp_path, '[identities.a]\nconsent = "a.json"\n[identities.b]\nconsent = "b.json"\n' + PAIR)
    with pytest.raises(BadInput, match="b.json"):
        load_spec(spec)


@pytest.mark.parametrize("body, message", [
    ("[dataset]\nframes = 0\n", "frames"),
    ("[dataset]\nsplits = [1, 2]\n", "splits"),
    ("[convert]\nvisible_label = true\n", "visible_label"),
    ("[convert]\ncrf = 99\n", "crf"),
    ("[convert]\nnot_an_option = 1\n", "not_an_option"),
    ("[nonsense]\n", "unknown sections"),
    ("this is = = not toml", "not a valid TOML dataset spec"),
])
def test_bad_spec_values(tmp_path, body, message):
    with pytest.raises(BadInput, match=message):
        load_spec(_spec(tmp_path, body + PAIR))


def test_missing_model_and_clip_are_named(tmp_path):
    _consent(tmp_path / "a.json")
    _consent(tmp_path / "b.json")
    spec = _spec(tmp_path, '[identities.a]\nconsent = "a.json"\n[identities.b]\nconsent = "b.json"\n' + PAIR)
    with pytest.raises(BadInput, match="not a facedub model folder"):
        load_spec(spec)
    with pytest.raises(BadInput, match="dataset spec not found"):
        load_spec(tmp_path / "missing.toml")


def test_existing_output_is_refused_before_anything(tmp_path, capsys):
    (tmp_path / "ds").mkdir()
    assert main(["dataset", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "ds")]) == 2
    assert "already exists" in capsys.readouterr().err
