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
