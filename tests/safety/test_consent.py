import datetime as dt
import json

import pytest

from facedub.errors import BadInput, ConsentMissing
from facedub.safety import consent as c

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_create_save_load_roundtrip(tmp_path):
    ev = tmp_path / "release.pdf"
    ev.write_bytes(b"signed release")
    rec = c.create_consent("Ada", "Ada", "film project X", expires="2031-01-31", evidence=ev, now=NOW)
    assert len(rec.id) == c.ID_HEX and rec.evidence_file == "release.pdf"
    assert rec.evidence_sha256 == __import__("hashlib").sha256(b"signed release").hexdigest()
    c.save_consent(rec, tmp_path / "consent.json")
    back = c.load_consent(tmp_path / "consent.json")
    assert back == rec
    assert c.verify_evidence(back, ev)
    ev.write_bytes(b"another file")
    assert not c.verify_evidence(back, ev)


def test_id_is_derived_from_content():
    a = c.create_consent("A", "A", "s", synthetic=True, now=NOW)
    b = c.create_consent("A", "A", "s", synthetic=True, now=NOW)
    d = c.create_consent("A", "A", "other scope", synthetic=True, now=NOW)
    assert a.id == b.id != d.id
    assert a.id == c.content_id(a.content())


def test_tampered_record_is_rejected(tmp_path):
    rec = c.create_consent("A", "A", "s", synthetic=True, now=NOW)
    d = rec.to_dict()
    d["scope"] = "anything at all"
    p = tmp_path / "c.json"
    p.write_text(json.dumps(d))
    with pytest.raises(BadInput, match="does not match its content"):
        c.load_consent(p)
    with pytest.raises(ConsentMissing, match="does not match"):
        c.check_valid(d, NOW)


def test_expiry():
    rec = c.create_consent("A", "A", "s", expires="2030-06-30", synthetic=True, now=NOW)
    assert c.check_valid(rec, NOW) == rec
    # a bare date lasts through the end of that day (UTC)
    assert c.problem(rec, dt.datetime(2030, 6, 30, 23, 59, tzinfo=dt.timezone.utc)) is None
    with pytest.raises(ConsentMissing, match="expired on 2030-06-30"):
        c.check_valid(rec, dt.datetime(2030, 7, 1, 0, 0, tzinfo=dt.timezone.utc))


def test_create_refuses_bad_values(tmp_path):
    with pytest.raises(BadInput, match="needs --evidence"):
        c.create_consent("A", "A", "s", now=NOW)
    with pytest.raises(BadInput, match="must not be empty"):
        c.create_consent(" ", "A", "s", synthetic=True, now=NOW)
    with pytest.raises(BadInput, match="already past"):
        c.create_consent("A", "A", "s", expires="2020-01-01", synthetic=True, now=NOW)
    with pytest.raises(BadInput, match="not a date"):
        c.create_consent("A", "A", "s", expires="next tuesday", synthetic=True, now=NOW)
    with pytest.raises(BadInput, match="evidence file not found"):
        c.create_consent("A", "A", "s", evidence=tmp_path / "missing.pdf", now=NOW)


def test_load_errors(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        c.load_consent(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadInput, match="not a readable"):
        c.load_consent(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"type": "something else"}))
    with pytest.raises(BadInput, match="not a facedub consent record"):
        c.load_consent(tmp_path / "other.json")


def test_missing_record_is_not_valid():
    assert c.problem(None) == "no consent record"
    with pytest.raises(ConsentMissing):
        c.check_valid(None)


def _forge(rec: c.ConsentRecord, **changes) -> dict:
    """The record with fields edited and the id recomputed (what anyone can do to the JSON)."""
    d = {**rec.to_dict(), **changes}
    d["id"] = c.content_id(c.ConsentRecord.from_dict(d).content())
    return d


def test_records_are_signed_with_the_installation_key():
    rec = c.create_consent("A", "A", "s", synthetic=True, now=NOW)
    key = c.installation_key()
    assert rec.signature["key"] == key.fingerprint and rec.signature["alg"] == "ES256"
    assert c.signature_problem(rec) is None and c.problem(rec, NOW) is None
    assert c.signer_of(rec) == {"key": key.fingerprint, "signer": key.name, "trusted": True, "own": True}


def test_forged_record_with_recomputed_id_is_rejected(tmp_path):
    rec = c.create_consent("Ada", "Ada", "film X", synthetic=True, now=NOW)
    forged = _forge(rec, subject="Someone Else")
    assert forged["id"] != rec.id  # the id check alone would pass now
    p = tmp_path / "forged.json"
    p.write_text(json.dumps(forged))
    with pytest.raises(BadInput, match="signature does not match"):
        c.load_consent(p)
    with pytest.raises(ConsentMissing, match="signature does not match"):
        c.check_valid(forged, NOW)
    # the same with a fresh expiry, and with the signature dropped
    assert "signature does not match" in c.problem(_forge(rec, expires="2099-01-01"), NOW)
    unsigned = _forge(rec, subject="Someone Else")
    unsigned.pop("signature")
    assert "not signed" in c.problem(unsigned, NOW) and "consent create" in c.problem(unsigned, NOW)


def test_record_signed_by_another_key_is_rejected_until_trusted(tmp_path, monkeypatch):
    import os

    from facedub.safety.provenance import facedub_home

    ours = c.create_consent("A", "A", "s", synthetic=True, now=NOW)
    own_home = os.environ["FACEDUB_HOME"]
    monkeypatch.setenv("FACEDUB_HOME", str(tmp_path / "other-home"))  # another installation
    theirs = c.create_consent("B", "B", "s", synthetic=True, now=NOW)
    monkeypatch.setenv("FACEDUB_HOME", own_home)
    assert theirs.signature["key"] != ours.signature["key"]
    why = c.problem(theirs, NOW)
    assert "does not trust" in why and theirs.signature["key"] in why
    assert c.signer_of(theirs)["trusted"] is False
    # the user decides to trust that installation: its public key in consent-keys/
    keys = facedub_home() / c.KEYS_DIR
    keys.mkdir(parents=True, exist_ok=True)
    try:
        (keys / "colleague.pem").write_text(theirs.signature["public_key"])
        assert c.problem(theirs, NOW) is None
        assert c.signer_of(theirs) == {"key": theirs.signature["key"], "signer": theirs.signature["signer"], "trusted": True, "own": False}
        # trusting a key does not make an edited record valid
        assert "signature does not match" in c.problem(_forge(theirs, subject="C"), NOW)
    finally:
        (keys / "colleague.pem").unlink()


def test_rebind_replaces_on_purpose_and_records_why(tmp_path):
    from facedub.faceset import load_faceset
    from tests.cli.test_bad_paths import ROOT, _load

    ff = _load("fakefaces_badpaths", ROOT / "train" / "fakefaces.py")
    fs = ff.make_faceset(tmp_path / "fs", "alice", n=2, seed=0)
    old = load_faceset(fs).consent
    new = c.create_consent("alice", "alice", "renewed for film Y", synthetic=True)
    c.save_consent(new, tmp_path / "new.json")
    with pytest.raises(BadInput, match="--reason"):
        c.rebind_faceset(fs, tmp_path / "new.json", " ")
    assert load_faceset(fs).consent == old and c.read_history(fs) == []
    was, now = c.rebind_faceset(fs, tmp_path / "new.json", "renewed")
    assert was == old and now["id"] == new.id and load_faceset(fs).consent["id"] == new.id
    (entry,) = c.read_history(fs)
    assert entry["action"] == "rebind" and entry["reason"] == "renewed"
    assert entry["old"]["id"] == old["id"] and entry["new"]["id"] == new.id
    assert entry["signature"]["key"] == c.installation_key().fingerprint
    with pytest.raises(BadInput, match="already carries"):
        c.rebind_faceset(fs, tmp_path / "new.json", "again")
    # a forged record is not bound either
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(_forge(new, subject="mallory")))
    with pytest.raises(BadInput, match="signature"):
        c.rebind_faceset(fs, forged, "swap people")
    assert len(c.read_history(fs)) == 1


def test_adopt_signs_only_unedited_unsigned_records(tmp_path):
    from facedub.faceset import load_faceset, save_faceset
    from tests.cli.test_bad_paths import ROOT, _load

    rec = c.create_consent("A", "A", "s", synthetic=True, now=NOW)
    old = rec.to_dict()
    old.pop("signature")  # as facedub wrote records before they were signed
    f = tmp_path / "old.json"
    f.write_text(json.dumps(old))
    with pytest.raises(BadInput, match="not signed"):
        c.load_consent(f)
    with pytest.raises(BadInput, match="--reason"):
        c.adopt(f, "")
    what, signed = c.adopt(f, "made with facedub 0.x for project X")
    assert what == "file" and c.load_consent(f) == signed and signed.id == rec.id
    with pytest.raises(BadInput, match="signed already"):
        c.adopt(f, "again")
    edited = dict(old, scope="anything")  # edited, id NOT recomputed: never adopted
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(BadInput, match="does not match its content"):
        c.adopt(tmp_path / "edited.json", "x")
    forged_signed = tmp_path / "forged.json"  # a signed record edited: never re-signed
    forged_signed.write_text(json.dumps(_forge(rec, subject="B")))
    with pytest.raises(BadInput, match="never re-signed"):
        c.adopt(forged_signed, "x")
    # a faceset carrying an old record
    ff = _load("fakefaces_badpaths", ROOT / "train" / "fakefaces.py")
    fs = ff.make_faceset(tmp_path / "fs", "alice", n=2, seed=0)
    from dataclasses import replace

    save_faceset(replace(load_faceset(fs), consent=old), fs)
    assert "not signed" in c.problem(load_faceset(fs).consent)
    c.adopt(fs, "old project")
    assert c.problem(load_faceset(fs).consent) is None
    assert [e["action"] for e in c.read_history(fs)] == ["adopt"]
