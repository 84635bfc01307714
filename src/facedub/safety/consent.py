"""Consent records: who agreed to have their face used, for what, until when, on what evidence.

A record is a small JSON object. Its ``id`` is derived from its content (the first 16 hex
digits of the sha256 of the canonical JSON of every other field), so editing any field after
creation is detected. ``evidence_sha256`` pins the evidence file (a signed release, a
recording) without copying it. ``synthetic: true`` declares an AI-generated identity that
belongs to no real person (the shared test portraits); such a record needs no evidence file.
A record for a real person must name an evidence file.

Signature: :func:`create_consent` signs the record (every field, the id included) with the
installation's own key — the ES256 key facedub keeps for Content Credentials
(``$FACEDUB_HOME/c2pa/signer.key``, or ``FACEDUB_C2PA_CERT``/``FACEDUB_C2PA_KEY``). The
``signature`` field carries the algorithm, the signer's public key, its fingerprint and
name, and the signature value. A record is accepted only when the signature verifies AND
the key is trusted: this installation's key, or a public key or certificate (PEM) the user
put in ``$FACEDUB_HOME/consent-keys/``. So an edited record — even with its id recomputed —
and a record signed by some other key are rejected. Unsigned records (made by facedub
before records were signed, or by hand) are rejected with a message saying how to replace
them.

Validity (:func:`check_valid`): the id matches the content, the signature verifies with a
trusted key, the required fields are filled, there is evidence or the identity is
synthetic, and ``now`` is not past ``expires`` (a date means "through the end of that day,
UTC").
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
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
    signature: dict[str, Any] | None = None  # {"alg", "key", "signer", "public_key", "value"}; see sign_record

    def content(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("id")
        d.pop("signature")
        return d

    def signed_content(self) -> dict[str, Any]:
        """What the signature covers: every field but the signature itself."""
        d = asdict(self)
        d.pop("signature")
        return d

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["signature"] is None:
            d.pop("signature")
        return d

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


def _canonical(d: Mapping[str, Any]) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_id(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(content)).hexdigest()[:ID_HEX]


# ----------------------------------------------------------------------------------------
# Signatures with the installation's key

SIG_ALG = "ES256"
KEYS_DIR = "consent-keys"  # under facedub_home(): PEM public keys / certificates also trusted


def key_fingerprint(public_key: Any) -> str:
    """``sha256:`` + the first 32 hex digits of the sha256 of the key's DER SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()[:32]


def _public_pem(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _cert_name(cert: Any) -> str:
    from cryptography.x509.oid import NameOID

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else cert.subject.rfc4514_string()


@dataclass(frozen=True)
class _Key:
    private: Any  # an EllipticCurvePrivateKey (P-256)
    fingerprint: str
    name: str  # the certificate's common name, e.g. "facedub signer (alice)"
    source: str  # where it came from


def _key_env() -> tuple[str, str | None, str | None]:
    from facedub.safety.provenance import facedub_home

    return str(facedub_home()), os.environ.get("FACEDUB_C2PA_CERT"), os.environ.get("FACEDUB_C2PA_KEY")


@functools.lru_cache(maxsize=8)
def _installation_key(env: tuple[str, str | None, str | None]) -> _Key:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from facedub.safety.provenance import signing_credentials

    creds = signing_credentials()
    try:
        private = serialization.load_pem_private_key(creds.key_pem, password=None)
        cert = x509.load_pem_x509_certificates(creds.chain_pem)[0]
    except ValueError as e:
        raise BadInput(f"{creds.source}: cannot read the signing key or certificate ({e})") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise BadInput(f"{creds.source}: consent records are signed with an EC (P-256) key; this key is another type")
    return _Key(private, key_fingerprint(private.public_key()), _cert_name(cert), creds.source)


def installation_key() -> _Key:
    """This installation's signing key (made on first use, shared with Content Credentials)."""
    return _installation_key(_key_env())


def trusted_keys() -> dict[str, str]:
    """{fingerprint: name} of the keys whose consent records are accepted."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from facedub.safety.provenance import facedub_home

    own = installation_key()
    keys = {own.fingerprint: f"{own.name} (this installation)"}
    folder = facedub_home() / KEYS_DIR
    if folder.is_dir():
        for f in sorted(folder.glob("*.pem")):
            try:
                data = f.read_bytes()
                if b"CERTIFICATE" in data:
                    cert = x509.load_pem_x509_certificates(data)[0]
                    keys.setdefault(key_fingerprint(cert.public_key()), f"{_cert_name(cert)} ({f.name})")
                else:
                    keys.setdefault(key_fingerprint(serialization.load_pem_public_key(data)), f.name)
            except (OSError, ValueError):
                continue
    return keys


def sign_record(record: "ConsentRecord") -> "ConsentRecord":
    """The record with a ``signature`` by this installation's key over all its other fields."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = installation_key()
    value = key.private.sign(_canonical(record.signed_content()), ec.ECDSA(hashes.SHA256()))
    sig = {
        "alg": SIG_ALG,
        "key": key.fingerprint,
        "signer": key.name,
        "public_key": _public_pem(key.private.public_key()),
        "value": base64.b64encode(value).decode("ascii"),
    }
    return ConsentRecord(**{**record.to_dict(), "signature": sig})


def signature_problem(record: "ConsentRecord") -> str | None:
    """Why the record's signature is not acceptable, or None when it verifies with a trusted key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    sig = record.signature
    if not sig:
        return (
            f"consent record {record.id} is not signed (made by facedub before records were signed, or by hand); "
            "if it is genuine, sign it with 'facedub consent adopt FILE|FACESET --reason TEXT' (a model trained "
            "with it takes the signed record on 'facedub train --resume'), or make a new one with 'facedub consent create'"
        )
    try:
        if sig.get("alg") != SIG_ALG:
            return f"consent record {record.id}: unknown signature algorithm {sig.get('alg')!r}"
        pub = serialization.load_pem_public_key(str(sig["public_key"]).encode("ascii"))
        if not isinstance(pub, ec.EllipticCurvePublicKey) or key_fingerprint(pub) != sig.get("key"):
            return f"consent record {record.id}: the signature's key does not match its fingerprint (edited?)"
        pub.verify(base64.b64decode(str(sig["value"])), _canonical(record.signed_content()), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return f"consent record {record.id}: the signature does not match the record (edited after signing?)"
    except (KeyError, TypeError, ValueError, AttributeError):
        return f"consent record {record.id}: malformed signature (edited?)"
    trusted = trusted_keys()
    if sig["key"] not in trusted:
        return (
            f"consent record {record.id} is signed by {sig.get('signer') or 'an unknown signer'} (key {sig['key']}), "
            f"which this installation does not trust; put that key's PEM in {KEYS_DIR}/ under the facedub home folder to accept it"
        )
    return None


def signer_of(record: "ConsentRecord | Mapping[str, Any]") -> dict[str, Any] | None:
    """{"key", "signer", "trusted", "own"} of a record's signature (not verified here), or None."""
    sig = record.signature if isinstance(record, ConsentRecord) else (record.get("signature") if isinstance(record, Mapping) else None)
    if not isinstance(sig, Mapping):
        return None
    try:
        trusted = trusted_keys()
        own = installation_key().fingerprint
    except BadInput:
        trusted, own = {}, None
    return {"key": sig.get("key"), "signer": sig.get("signer"), "trusted": sig.get("key") in trusted, "own": sig.get("key") == own}


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
    return sign_record(ConsentRecord(**{**rec.to_dict(), "id": content_id(rec.content())}))


def save_consent(record: ConsentRecord, path: str | os.PathLike[str]) -> None:
    write_json(path, record.to_dict())


def load_consent(path: str | os.PathLike[str], verify: bool = True) -> ConsentRecord:
    """Read a consent JSON file. BadInput when unreadable, malformed or edited after creation
    (the id or, with ``verify``, the signature does not match; or it is signed by an untrusted key)."""
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
    if verify:
        why = signature_problem(rec)
        if why is not None:
            raise BadInput(f"{p}: {why}")
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
    sig_why = signature_problem(rec)
    if sig_why is not None:
        return sig_why
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


# ----------------------------------------------------------------------------------------
# The evidence file kept beside its record

EVIDENCE_SUFFIX = ".evidence"  # consent/source.json -> consent/source.evidence/<evidence file>


def evidence_copy_path(record_path: str | os.PathLike[str], record: ConsentRecord | Mapping[str, Any]) -> Path | None:
    """Where the evidence of the record saved at ``record_path`` is kept (None: no evidence)."""
    name = record.evidence_file if isinstance(record, ConsentRecord) else record.get("evidence_file")
    if not name:
        return None
    base = Path(str(name).replace("\\", "/")).name or "evidence"
    rp = Path(record_path)
    return rp.parent / f"{rp.stem}{EVIDENCE_SUFFIX}" / base


def keep_evidence(record: ConsentRecord, record_path: str | os.PathLike[str], evidence: str | os.PathLike[str]) -> Path:
    """Copy ``evidence`` (the file the record was made from) beside the saved record, atomically.
    BadInput when the file is not the one the record's hash pins."""
    import shutil

    from facedub.fileio import atomic_path

    dest = evidence_copy_path(record_path, record)
    if dest is None:
        raise BadInput(f"consent record {record.id}: names no evidence file to keep")
    if not verify_evidence(record, evidence):
        raise BadInput(f"{evidence}: not the evidence file consent record {record.id} was made from (sha256 differs)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        shutil.copyfile(evidence, tmp)
    if sha256_file(dest) != record.evidence_sha256:  # a copy that changed on the way is no evidence
        dest.unlink(missing_ok=True)
        raise BadInput(f"{dest}: the kept copy of the evidence does not match its hash; not kept")
    return dest


def evidence_status(record_path: str | os.PathLike[str], record: ConsentRecord | Mapping[str, Any]) -> dict[str, Any]:
    """Whether the evidence kept beside a saved record is there and matches the record's hash:
    ``{"expected": bool, "path": str|None, "present": bool, "matches": bool|None}``."""
    want = record.evidence_sha256 if isinstance(record, ConsentRecord) else record.get("evidence_sha256")
    dest = evidence_copy_path(record_path, record)
    if not want or dest is None:
        return {"expected": False, "path": None, "present": False, "matches": None}
    present = dest.is_file()
    matches = (sha256_file(dest) == want) if present else None
    return {"expected": True, "path": str(dest), "present": present, "matches": matches}


# ----------------------------------------------------------------------------------------
# Binding a record to a faceset, and the record of every change

HISTORY_JSON = "consent_history.json"  # in the faceset folder: every bind and rebind


def read_history(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(folder) / HISTORY_JSON
    if not p.is_file():
        return []
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        raise BadInput(f"{p}: unreadable consent history") from None
    return [e for e in d.get("entries", []) if isinstance(e, dict)] if isinstance(d, dict) else []


def append_history(
    folder: str | os.PathLike[str],
    action: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Add one entry to ``FOLDER/consent_history.json`` (written atomically); return it.

    The entry is signed with the installation's key, like the records, so an edited entry
    shows (see :func:`history_problem`)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    entries = read_history(folder)
    entry: dict[str, Any] = {
        "time": (now or _utcnow()).replace(microsecond=0).isoformat(),
        "action": action,
        "old": {"id": old.get("id"), "subject": old.get("subject")} if old else None,
        "new": {"id": new.get("id"), "subject": new.get("subject")} if new else None,
        "reason": reason,
        "user": os.environ.get("USER") or os.environ.get("USERNAME") or "",
        "previous": content_id(entries[-1]) if entries else None,  # chains the entries
    }
    key = installation_key()
    entry["signature"] = {
        "key": key.fingerprint,
        "value": base64.b64encode(key.private.sign(_canonical(entry), ec.ECDSA(hashes.SHA256()))).decode("ascii"),
    }
    write_json(Path(folder) / HISTORY_JSON, {"type": "facedub.consent-history", "entries": [*entries, entry]})
    return entry


def rebind_faceset(
    folder: str | os.PathLike[str],
    record_path: str | os.PathLike[str],
    reason: str,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Replace (or add) the consent record of the faceset ``folder`` on purpose, recording who,
    when and why in its consent history. Returns (old record or None, new record)."""
    from dataclasses import replace

    from facedub.faceset.store import load_faceset, save_faceset

    if not (reason or "").strip():
        raise BadInput("consent rebind: say why with --reason (it is kept in the faceset's consent history)")
    fs = load_faceset(folder)
    rec = load_consent(record_path)
    check_valid(rec, now, where=str(record_path))
    old = fs.consent
    new = rec.to_dict()
    if old is not None and old.get("id") == rec.id:
        raise BadInput(f"{folder}: already carries consent record {rec.id}; nothing to change")
    append_history(folder, "rebind" if old else "bind", old, new, reason.strip(), now)
    save_faceset(replace(fs, consent=new), folder)
    return old, new


def adopt(path: str | os.PathLike[str], reason: str, now: dt.datetime | None = None) -> tuple[str, ConsentRecord]:
    """Sign an UNSIGNED record (made before facedub signed records) with this installation's
    key, on purpose: in a consent file, or the one a faceset carries (recorded in its consent
    history). Refused for a record whose id does not match its content, or that carries a
    signature already (an edited signed record is never re-signed). Returns (what, record)."""
    from dataclasses import replace

    from facedub.faceset.store import load_faceset, save_faceset

    if not (reason or "").strip():
        raise BadInput("consent adopt: say why with --reason (for a faceset it is kept in its consent history)")
    p = Path(path)

    def signed(d: Mapping[str, Any] | None, where: str) -> ConsentRecord:
        if d is None:
            raise BadInput(f"{where}: carries no consent record")
        rec = ConsentRecord.from_dict(d, where)
        if rec.id != content_id(rec.content()):
            raise BadInput(f"{where}: consent record id does not match its content (edited after creation?); not adopted")
        if rec.signature:
            why = signature_problem(rec)
            raise BadInput(f"{where}: the record is signed already" + (f" ({why}); an edited signed record is never re-signed" if why else ""))
        return sign_record(rec)

    if p.is_dir():
        fs = load_faceset(p)
        rec = signed(fs.consent, str(p))
        append_history(p, "adopt", fs.consent, rec.to_dict(), reason.strip(), now)
        save_faceset(replace(fs, consent=rec.to_dict()), p)
        return "faceset", rec
    rec = signed(load_consent(p, verify=False).to_dict(), str(p))
    save_consent(rec, p)
    return "file", rec
