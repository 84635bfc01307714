import json

import pytest

from facedub.cli import main


def test_create_and_show(tmp_path, capsys):
    out = tmp_path / "consent.json"
    assert main(["consent", "create", "--subject", "aiface1", "--granted-by", "facedub tests", "--scope", "tests",
                 "--expires", "2099-12-31", "--synthetic", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["synthetic"] and rec["expires"] == "2099-12-31" and len(rec["id"]) == 16
    capsys.readouterr()
    assert main(["consent", "show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["valid"] and shown["records"]["consent"]["id"] == rec["id"]
    # a faceset folder carrying it
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "faceset.json").write_text(json.dumps({"id": "fs1", "consent": rec}))
    assert main(["consent", "show", str(fs)]) == 0
    text = capsys.readouterr().out
    assert rec["id"] in text and "VALID" in text
    # a model folder without records
    m = tmp_path / "model"
    m.mkdir()
    (m / "model.json").write_text(json.dumps({"id": "m1"}))
    assert main(["consent", "show", str(m)]) == 0
    assert "no consent record" in capsys.readouterr().out


def test_create_with_evidence(tmp_path):
    ev = tmp_path / "release.txt"
    ev.write_text("I agree.")
    out = tmp_path / "c.json"
    assert main(["consent", "create", "--subject", "A", "--granted-by", "A", "--scope", "s", "--evidence", str(ev), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["evidence_file"] == "release.txt"


def test_real_person_without_evidence_is_bad_input(tmp_path, capsys):
    assert main(["consent", "create", "--subject", "A", "--granted-by", "A", "--scope", "s", "--out", str(tmp_path / "c.json")]) == 2
    assert "evidence" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_show_bad_path(tmp_path):
    assert main(["consent", "show", str(tmp_path / "nothing")]) == 2


def test_usage_error():
    with pytest.raises(SystemExit) as e:
        main(["consent", "create", "--subject", "A"])
    assert e.value.code == 2
