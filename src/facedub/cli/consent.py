"""``facedub consent create|show``: write a consent record, or show what a file carries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "consent",
        help="create a consent record, or show the consent a faceset or model carries",
        description=(
            "Consent records say whose face may be used, who agreed, for what and until when. "
            "'extract --consent FILE' binds one to a faceset; 'train' refuses unless both facesets "
            "carry a valid, unexpired record; 'convert' re-checks expiry. Records are signed with "
            "this installation's key, so an edited record is rejected; 'rebind' replaces a "
            "faceset's record on purpose and records why."
        ),
    )
    sp = p.add_subparsers(dest="consent_command", metavar="ACTION", required=True)

    c = sp.add_parser("create", help="write a new consent record (JSON)", description="Write a consent record whose id is derived from its content, signed with this installation's key.")
    c.add_argument("--subject", required=True, metavar="NAME", help="the person whose face will be used (or the synthetic identity's name)")
    c.add_argument("--granted-by", required=True, metavar="NAME", help="who gave the consent (the subject, or their guardian or rights holder)")
    c.add_argument("--scope", required=True, metavar="TEXT", help="what the consent covers, in plain words (project, use, distribution)")
    c.add_argument("--expires", metavar="DATE", help="last day the consent is valid (YYYY-MM-DD); no expiry when left out")
    c.add_argument("--evidence", metavar="FILE", help="the signed release or recording; only its name and sha256 are stored (required unless --synthetic)")
    c.add_argument("--keep-evidence", action="store_true",
                   help="also copy the evidence file beside the record (OUT's stem + .evidence/), where 'consent show' checks it")
    c.add_argument("--synthetic", action="store_true", help="the identity is AI-generated and belongs to no real person")
    c.add_argument("--out", required=True, metavar="FILE", help="where to write the consent record (e.g. consent.json)")
    c.add_argument("--json", action="store_true", help="print the record as JSON on stdout")
    c.set_defaults(func=run_create)

    s = sp.add_parser("show", help="show the consent a faceset, a model or a consent file carries", description="Show consent records and whether each is valid now.")
    s.add_argument("path", metavar="FACESET|MODEL|PROJECT|consent.json",
                   help="a faceset folder, a model folder, a project folder or a consent JSON file "
                        "(for a file, or a project's records, also whether the evidence kept beside it is there and matches)")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    s.set_defaults(func=run_show)

    r = sp.add_parser(
        "rebind",
        help="replace (or add) the consent record of a faceset, on purpose, with a reason kept in its history",
        description=(
            "Bind the record in --consent to FACESET, replacing the record it carries (for instance one "
            "that expired, or one that named the wrong person). 'extract --consent' never replaces a "
            "record; this command does, and adds who, when, the old and new record and --reason to "
            "FACESET/consent_history.json. Models trained before keep the record they were trained with."
        ),
    )
    r.add_argument("faceset", metavar="FACESET", help="the faceset folder")
    r.add_argument("--consent", required=True, metavar="FILE", help="the consent record to bind (from 'facedub consent create')")
    r.add_argument("--reason", required=True, metavar="TEXT", help="why the record changes (kept in the faceset's consent history)")
    r.set_defaults(func=run_rebind)

    a = sp.add_parser(
        "adopt",
        help="sign an unsigned record (made before facedub signed records) with this installation's key",
        description=(
            "Records made by facedub before records were signed are refused. If you know such a record "
            "is genuine, 'adopt' signs it with this installation's key: a consent file in place, or the "
            "record a faceset carries (recorded with --reason in the faceset's consent history). A record "
            "whose id does not match its content, or that is signed already, is never adopted. A model "
            "trained with an adopted record takes the signed one on 'facedub train --resume'."
        ),
    )
    a.add_argument("path", metavar="FACESET|consent.json", help="a faceset folder or a consent JSON file")
    a.add_argument("--reason", required=True, metavar="TEXT", help="why you vouch for the record")
    a.set_defaults(func=run_adopt)


def run_create(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.safety.consent import create_consent, save_consent

    from facedub.outputs import check_output

    check_output(args.out, inputs=[args.evidence], what="--out")
    rec = create_consent(args.subject, args.granted_by, args.scope, args.expires, args.evidence, args.synthetic)
    if args.keep_evidence:
        from facedub.errors import BadInput
        from facedub.safety.consent import keep_evidence

        if not args.evidence:
            raise BadInput("--keep-evidence: give the file with --evidence")
        keep_evidence(rec, args.out, args.evidence)
    save_consent(rec, args.out)
    if args.json:
        print(json.dumps(rec.to_dict(), ensure_ascii=False))
    else:
        print(f"consent record {rec.id} for {rec.subject!r} written to {args.out}")
    return 0


def collect(path: str) -> dict[str, Any]:
    """{"kind": ..., "records": {role: record dict or None}} for a faceset, model or consent file."""
    from facedub.errors import BadInput
    from facedub.safety.consent import load_consent

    p = Path(path)
    if p.is_dir():
        if (p / "faceset.json").is_file():
            d = _read_json(p / "faceset.json")
            from facedub.safety.consent import read_history

            return {"kind": "faceset", "id": d.get("id"), "records": {"faceset": d.get("consent")}, "history": read_history(p)}
        if (p / "model.json").is_file():
            d = _read_json(p / "model.json")
            c = d.get("consent") if isinstance(d.get("consent"), dict) else {}
            return {"kind": "model", "id": d.get("id") or d.get("model_id"), "records": {"source": c.get("source"), "target": c.get("target")}}
        if (p / "project.json").is_file():
            recs: dict[str, Any] = {}
            paths: dict[str, str] = {}
            for role in ("source", "target"):
                f = p / "consent" / f"{role}.json"
                recs[role] = load_consent(f, verify=False).to_dict() if f.is_file() else None
                paths[role] = str(f)
            return {"kind": "project", "id": None, "records": recs, "record_paths": paths}
        raise BadInput(f"{p}: neither a faceset (faceset.json), a model (model.json) nor a project (project.json)")
    if p.is_file():
        if p.name in ("faceset.json", "model.json", "project.json"):
            return collect(str(p.parent))
        return {"kind": "consent", "id": None, "records": {"consent": load_consent(p, verify=False).to_dict()}, "record_paths": {"consent": str(p)}}
    raise BadInput(f"{p}: no such file or folder")


def _read_json(p: Path) -> dict[str, Any]:
    from facedub.errors import BadInput

    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{p}: unreadable JSON ({e})") from None
    if not isinstance(d, dict):
        raise BadInput(f"{p}: not a JSON object")
    return d


def run_show(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.safety.consent import evidence_status, problem, signer_of

    info = collect(args.path)
    status = {role: (problem(rec) if rec is not None else "no consent record") for role, rec in info["records"].items()}
    signers = {role: (signer_of(rec) if rec is not None else None) for role, rec in info["records"].items()}
    # the evidence kept beside a record file (consent/ROLE.evidence/): present, and its hash?
    evidence = {role: evidence_status(info["record_paths"][role], rec)
                for role, rec in info["records"].items() if rec is not None and role in (info.get("record_paths") or {})}
    if args.json:
        print(json.dumps({**info, "problems": status, "signers": signers, "evidence": evidence,
                          "valid": all(v is None for v in status.values())}, ensure_ascii=False))
        return 0
    head = f"{args.path}: {info['kind']}" + (f" {info['id']}" if info.get("id") else "")
    print(head)
    for role, rec in info["records"].items():
        if rec is None:
            print(f"  {role}: no consent record")
            continue
        why = status[role]
        print(f"  {role}: record {rec.get('id')} — {'VALID' if why is None else 'NOT VALID: ' + why}")
        print(f"    subject: {rec.get('subject')}  (granted by {rec.get('granted_by')})")
        print(f"    scope: {rec.get('scope')}")
        print(f"    created: {rec.get('created')}  expires: {rec.get('expires') or 'never'}")
        if rec.get("synthetic"):
            print("    synthetic identity (AI-generated, no real person)")
        if rec.get("evidence_sha256"):
            print(f"    evidence: {rec.get('evidence_file')} sha256 {rec.get('evidence_sha256')}")
            ev = evidence.get(role)
            if ev is not None:
                if not ev["present"]:
                    print(f"    evidence file: not kept beside the record (no {ev['path']})")
                elif ev["matches"]:
                    print(f"    evidence file: kept at {ev['path']}, sha256 matches")
                else:
                    print(f"    evidence file: kept at {ev['path']}, sha256 DOES NOT MATCH the record (changed after recording)")
        sg = signers[role]
        if sg is None:
            print("    signed: no (unsigned record)")
        else:
            trust = "this installation's key" if sg["own"] else ("a trusted key" if sg["trusted"] else "a key this installation does not trust")
            print(f"    signed by: {sg['signer']} (key {sg['key']}, {trust})")
    for e in info.get("history") or []:
        old, new = e.get("old") or {}, e.get("new") or {}
        print(f"  history: {e.get('time')} {e.get('action')} {old.get('id') or '-'} -> {new.get('id')} ({new.get('subject')!r})"
              + (f" by {e['user']}" if e.get("user") else "") + (f": {e['reason']}" if e.get("reason") else ""))
    return 0


def run_adopt(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.safety.consent import adopt, installation_key

    what, rec = adopt(args.path, args.reason)
    print(f"{args.path}: consent record {rec.id} ({rec.subject!r}) signed with {installation_key().name} (key {installation_key().fingerprint})"
          + ("; recorded in its consent history" if what == "faceset" else ""))
    return 0


def run_rebind(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.safety.consent import rebind_faceset

    old, new = rebind_faceset(args.faceset, args.consent, args.reason)
    was = f"record {old.get('id')} ({old.get('subject')!r})" if old else "no record"
    print(f"{args.faceset}: consent record {new['id']} ({new['subject']!r}) bound, replacing {was}; recorded in its consent history")
    return 0
