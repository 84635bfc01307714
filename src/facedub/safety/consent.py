"""Consent records: who agreed to have their face used, for what, until when, on what evidence.

A record is a small JSON object. Its ``id`` is derived from its content (the first 16 hex
digits of the sha256 of the canonical JSON of every other field), so editing any field after
creation is detected. ``evidence_sha256`` pins the evidence file (a signed release, a
recording) without copying it. ``synthetic: true`` declares an AI-generated identity that
belongs to no real person (the shared test portraits); such a record needs no evidence file.
A record for a real person must name an evidence file.

Validity (:func:`check_valid`): the id matches the content, the required fields are filled,
there is evidence or the identity is synthetic, and ``now`` is not past ``expires`` (a date
means "through the end of that day, UTC").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from facedub.errors import BadInput, ConsentMissing
from facedub.fileio import sha256_file, write_json

RECORD_TYPE = "facedub.consent"
RECORD_VERSION = 1
ID_HEX = 16  # hex digits of the content hash used as the record id


@dataclass(frozen=True)
class ConsentRecord:
    subject: str  # the person whose face is used (or the synthetic identity's name)
    granted_by: str  # who gave consent (the subject, or a legal guardian / rights holder)
    scope: str  # what the consent covers, in plain words
    created: str  # ISO 8601 UTC time of creation
    expires: str | None = None  # ISO date (YYYY-MM-DD) or datetime; None = no expiry
    synthetic: bool = False  # True: AI-generated identity belonging to no real person
    evidence_file: str | None = None  # the evidence file's name (not its path)
    evidence_sha256: str | None = None  # sha256 of the evidence file
    type: str = RECORD_TYPE
    version: int = RECORD_VERSION
    id: str = ""  # content id; filled by create_consent

    def content(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("id")
        return d

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "consent record") -> "ConsentRecord":
        if not isinstance(d, Mapping):
            raise BadInput(f"{where}: a consent record must be a JSON object")
        if d.get("type") != RECORD_TYPE:
            raise BadInput(f"{where}: not a facedub consent record (type is {d.get('type')!r})")
        if d.get("version") != RECORD_VERSION:
            raise BadInput(f"{where}: unsupported consent record version {d.get('version')!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise BadInput(f"{where}: unknown fields {sorted(unknown)}")
        try:
            return cls(**dict(d))
        except TypeError as e:
            raise BadInput(f"{where}: {e}") from None


def content_id(content: Mapping[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:ID_HEX]


def parse_expiry(text: str) -> dt.datetime:
    """The moment a record stops being valid (aware UTC). A bare date lasts through that day."""
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
            return dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expiry {text!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_consent(
    subject: str,
    granted_by: str,
    scope: str,
    expires: str | dt.date | None = None,
    evidence: str | os.PathLike[str] | None = None,
    synthetic: bool = False,
    now: dt.datetime | None = None,
) -> ConsentRecord:
    """Build a record (not written; see :func:`save_consent`). Raises BadInput on bad values."""
    now = now or _utcnow()
    for name, value in (("subject", subject), ("granted-by", granted_by), ("scope", scope)):
        if not isinstance(value, str) or not value.strip():
            raise BadInput(f"consent: --{name} must not be empty")
    exp: str | None = None
    if expires is not None:
        exp = expires.isoformat() if isinstance(expires, (dt.date, dt.datetime)) else str(expires)
        try:
            when = parse_expiry(exp)
        except ValueError as e:
            raise BadInput(f"consent: {e}") from None
        if when <= now:
            raise BadInput(f"consent: expiry {exp} is already past")
    ev_name = ev_hash = None
    if evidence is not None:
        p = Path(evidence)
        if not p.is_file():
            raise BadInput(f"{p}: evidence file not found")
        ev_name, ev_hash = p.name, sha256_file(p)
    if not synthetic and ev_hash is None:
        raise BadInput(
            "consent: a real person's consent needs --evidence FILE (a signed release, a recording); "
            "use --synthetic only for an AI-generated identity that belongs to no real person"
        )
    rec = ConsentRecord(
        subject=subject.strip(),
        granted_by=granted_by.strip(),
        scope=scope.strip(),
        created=now.replace(microsecond=0).isoformat(),
        expires=exp,
        synthetic=bool(synthetic),
        evidence_file=ev_name,
        evidence_sha256=ev_hash,
    )
    return ConsentRecord(**{**rec.to_dict(), "id": content_id(rec.content())})


def save_consent(record: ConsentRecord, path: str | os.PathLike[str]) -> None:
    write_json(path, record.to_dict())


def load_consent(path: str | os.PathLike[str]) -> ConsentRecord:
    """Read a consent JSON file. BadInput when unreadable, malformed or edited after creation."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{p}: consent file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(f"{p}: not a readable consent JSON file ({e})") from None
    rec = ConsentRecord.from_dict(d, str(p))
    if rec.id != content_id(rec.content()):
        raise BadInput(f"{p}: consent record id does not match its content (edited after creation?)")
    return rec


def problem(record: ConsentRecord | Mapping[str, Any] | None, now: dt.datetime | None = None) -> str | None:
    """Why a record is not valid at ``now``, or None when it is."""
    if record is None:
        return "no consent record"
    try:
        rec = record if isinstance(record, ConsentRecord) else ConsentRecord.from_dict(record)
    except BadInput as e:
        return str(e)
    if rec.id != content_id(rec.content()):
        return f"consent record {rec.id or '?'} does not match its content (edited after creation?)"
    if not (rec.subject.strip() and rec.granted_by.strip() and rec.scope.strip()):
        return f"consent record {rec.id} has an empty subject, granted-by or scope"
    if not rec.synthetic and not rec.evidence_sha256:
        return f"consent record {rec.id} for a real person names no evidence file"
    if rec.expires:
        try:
            when = parse_expiry(rec.expires)
        except ValueError as e:
            return f"consent record {rec.id}: {e}"
        now = now or _utcnow()
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
        if now >= when:
            return f"consent record {rec.id} for {rec.subject!r} expired on {rec.expires}"
    return None


def check_valid(record: ConsentRecord | Mapping[str, Any] | None, now: dt.datetime | None = None, where: str = "") -> ConsentRecord:
    """Return the record when valid at ``now``; raise ConsentMissing naming ``where`` otherwise."""
    why = problem(record, now)
    if why is not None:
        raise ConsentMissing(f"{where}: {why}" if where else why)
    return record if isinstance(record, ConsentRecord) else ConsentRecord.from_dict(record)  # type: ignore[arg-type]


def verify_evidence(record: ConsentRecord, evidence: str | os.PathLike[str]) -> bool:
    """True when ``evidence`` is the very file the record was created with."""
    return record.evidence_sha256 is not None and sha256_file(evidence) == record.evidence_sha256
