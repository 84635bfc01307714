"""Consent evidence uploaded through the page is kept in the project, beside its record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from facedub.cli import main
from facedub.project import create_project
from facedub.ui import tasks


def _upload(tmp_path, text: str = "I, A. Person, agree to ..."):
    cache = tmp_path / ".ui-cache" / "abc123"
    cache.mkdir(parents=True)
    f = cache / "release.txt"
    f.write_text(text)
    return f


def _show(path, capsys) -> dict:
    capsys.readouterr()
    assert main(["consent", "show", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evidence_kept_survives_restart_and_tamper_reported(tmp_path, capsys):
    p = create_project(tmp_path / "projects", "ev")
    up = _upload(tmp_path)
    rec = tasks.record_consent(p, "source", "A. Person", "A. Person", "tests", "", str(up), False)
    kept = p.root / "consent" / "source.evidence" / "release.txt"
    assert kept.is_file() and kept.read_text() == up.read_text()
    # Gradio purges its cache: the kept copy is what remains
    shutil.rmtree(tmp_path / ".ui-cache")
    # a new process (a restarted server, or the CLI) finds it and the hash matches
    out = subprocess.run([sys.executable, "-m", "facedub", "consent", "show", str(p.root)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"kept at {kept}, sha256 matches" in out.stdout
    shown = _show(p.consent_path("source"), capsys)
    assert shown["evidence"]["consent"] == {"expected": True, "path": str(kept), "present": True, "matches": True}
    assert shown["records"]["consent"]["evidence_sha256"] == rec["evidence_sha256"]
    # tampered
    kept.write_text("I do not agree.")
    assert main(["consent", "show", str(p.root)]) == 0
    assert "DOES NOT MATCH" in capsys.readouterr().out
    assert _show(p.root, capsys)["evidence"]["source"]["matches"] is False
    # missing
    kept.unlink()
    assert main(["consent", "show", str(p.consent_path("source"))]) == 0
    assert "not kept beside the record" in capsys.readouterr().out


def test_new_record_replaces_old_evidence_and_synthetic_needs_none(tmp_path, capsys):
    p = create_project(tmp_path / "projects", "ev2")
    tasks.record_consent(p, "target", "B", "B", "tests", "", str(_upload(tmp_path / "a", "first")), False)
    second = tmp_path / "b" / "release-2.txt"
    second.parent.mkdir()
    second.write_text("second")
    tasks.record_consent(p, "target", "B", "B", "tests", "", str(second), False)
    folder = p.root / "consent" / "target.evidence"
    assert [f.name for f in folder.iterdir()] == ["release-2.txt"]
    tasks.record_consent(p, "source", "aiface1", "tests", "tests", "", None, True)
    shown = _show(p.root, capsys)
    assert shown["evidence"]["source"]["expected"] is False
    assert shown["evidence"]["target"]["matches"] is True


def test_cli_create_can_keep_the_evidence(tmp_path, capsys):
    ev = tmp_path / "release.txt"
    ev.write_text("I agree.")
    out = tmp_path / "c.json"
    assert main(["consent", "create", "--subject", "A", "--granted-by", "A", "--scope", "s", "--evidence", str(ev),
                 "--keep-evidence", "--out", str(out)]) == 0
    assert (tmp_path / "c.evidence" / "release.txt").read_text() == "I agree."
    shown = _show(out, capsys)
    assert shown["evidence"]["consent"]["matches"] is True
    assert main(["consent", "create", "--subject", "A", "--granted-by", "A", "--scope", "s", "--synthetic",
                 "--keep-evidence", "--out", str(tmp_path / "d.json")]) == 2
    assert "--keep-evidence" in capsys.readouterr().err and not (tmp_path / "d.json").exists()
