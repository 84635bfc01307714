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


def _fakefaces():
    from tests.cli.test_bad_paths import ROOT, _load

    return _load("fakefaces_badpaths", ROOT / "train" / "fakefaces.py")


def _record(tmp_path, name, subject):
    from facedub.safety.consent import create_consent, save_consent

    save_consent(create_consent(subject, "facedub tests", "tests", synthetic=True), tmp_path / name)
    return tmp_path / name


def _grey_image(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64), (120, 120, 120)).save(tmp_path / "grey.png")
    return tmp_path / "grey.png"


def test_extract_never_replaces_a_faceset_record(tmp_path, capsys):
    fs = _fakefaces().make_faceset(tmp_path / "fs", "alice", n=3, seed=0)
    before = (fs / "faceset.json").read_bytes()
    other = _record(tmp_path, "other.json", "mallory")
    rc = main(["--quiet", "extract", str(_grey_image(tmp_path)), "--out", str(fs), "--consent", str(other)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other.json" in err and "already carries" in err and "consent rebind" in err
    assert (fs / "faceset.json").read_bytes() == before and not (fs / "consent_history.json").exists()


def test_extract_binds_no_record_to_faces_it_did_not_keep(tmp_path, capsys):
    """A faceset with faces and no record, and inputs without that person: the record is not bound."""
    fs = _fakefaces().make_faceset(tmp_path / "fs", "alice", n=3, seed=0, consent=False)
    other = _record(tmp_path, "other.json", "mallory")
    rc = main(["--quiet", "extract", str(_grey_image(tmp_path)), "--out", str(fs), "--consent", str(other)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not bound" in err and "other.json" in err
    assert json.loads((fs / "faceset.json").read_text())["consent"] is None


def test_rebind_and_show_name_the_key_and_the_history(tmp_path, capsys):
    from facedub.safety.consent import installation_key

    fs = _fakefaces().make_faceset(tmp_path / "fs", "alice", n=3, seed=0)
    new = _record(tmp_path, "new.json", "alice")
    assert main(["consent", "rebind", str(fs), "--consent", str(new), "--reason", "renewed for film Y"]) == 0
    assert "recorded in its consent history" in capsys.readouterr().out
    assert main(["consent", "show", str(fs)]) == 0
    text = capsys.readouterr().out
    key = installation_key()
    assert f"signed by: {key.name} (key {key.fingerprint}, this installation's key)" in text
    assert "rebind" in text and "renewed for film Y" in text and "VALID" in text
    # an unsigned record (an older facedub, or by hand) is shown, and says why it is not valid
    d = json.loads(new.read_text())
    d.pop("signature")
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert main(["consent", "show", str(tmp_path / "old.json")]) == 0
    text = capsys.readouterr().out
    assert "NOT VALID" in text and "not signed" in text and "signed: no" in text
    assert main(["consent", "rebind", str(fs), "--consent", str(tmp_path / "old.json"), "--reason", "x"]) == 2
    assert "not signed" in capsys.readouterr().err
    assert main(["consent", "adopt", str(tmp_path / "old.json"), "--reason", "made with an older facedub"]) == 0
    assert "signed with" in capsys.readouterr().out
    assert main(["consent", "show", str(tmp_path / "old.json")]) == 0
    assert "this installation's key" in capsys.readouterr().out


@pytest.mark.shared
def test_extract_binds_a_record_only_to_the_same_person(shared_data, tmp_path, capsys):
    syn = shared_data / "synthetic"
    fs = tmp_path / "fs"
    quick = ["--every", "10", "--max-frames", "3"]
    assert main(["--quiet", "extract", str(syn / "aiface1" / "speech_256.mp4"), "--out", str(fs), *quick]) == 0
    assert json.loads((fs / "faceset.json").read_text())["consent"] is None
    rec = _record(tmp_path, "c.json", "aiface1")
    # another person's footage with the record: none of their faces is kept, nothing bound
    rc = main(["--quiet", "extract", str(syn / "aiface2" / "english_256.mp4"), "--out", str(fs), *quick, "--consent", str(rec)])
    assert rc == 2 and "not bound" in capsys.readouterr().err
    assert json.loads((fs / "faceset.json").read_text())["consent"] is None
    # a --reference photo of someone else: the faces already there are not that person's
    rc = main(["--quiet", "extract", str(syn / "aiface1" / "speech_512.mp4"), "--out", str(fs), *quick,
               "--consent", str(rec), "--reference", str(shared_data / "portraits" / "aiface6.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "not bound" in err and "aiface6.png" in err, err
    assert json.loads((fs / "faceset.json").read_text())["consent"] is None
    # the same person's footage with the record: faces kept, record bound, the binding recorded
    rc = main(["--quiet", "extract", str(syn / "aiface1" / "speech_512.mp4"), "--out", str(fs), *quick, "--consent", str(rec)])
    assert rc == 0, capsys.readouterr().err
    d = json.loads((fs / "faceset.json").read_text())
    assert d["consent"]["id"] == json.loads(rec.read_text())["id"]
    hist = json.loads((fs / "consent_history.json").read_text())["entries"]
    assert [e["action"] for e in hist] == ["bind"] and hist[0]["new"]["subject"] == "aiface1"
