"""``facedub ui``: options, the --host warning, bad values as plain errors."""

from __future__ import annotations

import pytest

from facedub.cli import build_parser, main
from facedub.progress import RecordingReporter


def _run(argv, monkeypatch, tmp_path):
    calls = {}

    def fake_serve(root, host, port, max_upload, token=None, settings=None):
        calls.update(root=root, host=host, port=port, max_upload=max_upload, token=token, settings=settings)

    monkeypatch.setattr("facedub.ui.server.serve", fake_serve)
    args = build_parser().parse_args(["ui", "--projects", str(tmp_path / "projects"), *argv])
    rep = RecordingReporter()
    assert args.func(args, rep) == 0
    return calls, rep


def test_defaults_are_local(monkeypatch, tmp_path):
    calls, rep = _run([], monkeypatch, tmp_path)
    assert calls["host"] == "127.0.0.1" and calls["port"] == 7860 and calls["max_upload"] == "4gb"
    assert (tmp_path / "projects").is_dir()
    assert not any("warning" in n for n in rep.notes)


def test_host_warns(monkeypatch, tmp_path):
    calls, rep = _run(["--host", "0.0.0.0", "--port", "8080", "--max-upload", "100mb"], monkeypatch, tmp_path)
    assert calls["host"] == "0.0.0.0" and calls["port"] == 8080 and calls["max_upload"] == "100mb"
    assert any(n.startswith("warning: listening on 0.0.0.0") for n in rep.notes)
    # a token is made, printed once in the address, and required; typed paths are off
    tok = calls["token"]
    assert tok and len(tok) >= 16
    assert sum(tok in n for n in rep.notes) == 1 and any(f"?token={tok}" in n for n in rep.notes)
    assert calls["settings"].local_paths == () and not calls["settings"].paths_enabled
    assert calls["settings"].project_quota == 20 * 1024**3


def test_host_with_own_token_allowed_folders_and_quota(monkeypatch, tmp_path):
    (tmp_path / "videos").mkdir()
    monkeypatch.setenv("FACEDUB_UI_TOKEN", "a-long-secret")
    calls, rep = _run(["--host", "10.0.0.2", "--allow-paths", str(tmp_path / "videos"), "--project-quota", "500mb"], monkeypatch, tmp_path)
    assert calls["token"] == "a-long-secret" and not any("a-long-secret" in n for n in rep.notes)
    assert calls["settings"].local_paths == (str((tmp_path / "videos").resolve()),)
    assert calls["settings"].project_quota == 500 * 1024**2
    calls, _ = _run(["--token", "another-secret"], monkeypatch, tmp_path)  # loopback with a token: required too
    assert calls["token"] == "another-secret" and calls["settings"].local_paths is None


def test_short_token_and_bad_quota_are_plain_errors(tmp_path, capsys):
    assert main(["ui", "--projects", str(tmp_path), "--host", "0.0.0.0", "--token", "short"]) == 2
    assert "--token" in capsys.readouterr().err
    assert main(["ui", "--projects", str(tmp_path), "--project-quota", "lots"]) == 2
    assert "--project-quota" in capsys.readouterr().err


def test_bad_port_is_a_plain_error(tmp_path, capsys):
    assert main(["ui", "--projects", str(tmp_path), "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--port 70000" in err and "Traceback" not in err


def test_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["ui", "--help"])
    out = capsys.readouterr().out
    for opt in ("--host", "--port", "--projects", "--max-upload", "--token", "--allow-paths", "--project-quota"):
        assert opt in out
