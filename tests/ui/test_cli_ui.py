"""``facedub ui``: options, the --host warning, bad values as plain errors."""

from __future__ import annotations

import pytest

from facedub.cli import build_parser, main
from facedub.progress import RecordingReporter


def _run(argv, monkeypatch, tmp_path):
    calls = {}

    def fake_serve(root, host, port, max_upload):
        calls.update(root=root, host=host, port=port, max_upload=max_upload)

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


def test_bad_port_is_a_plain_error(tmp_path, capsys):
    assert main(["ui", "--projects", str(tmp_path), "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--port 70000" in err and "Traceback" not in err


def test_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["ui", "--help"])
    out = capsys.readouterr().out
    for opt in ("--host", "--port", "--projects", "--max-upload"):
        assert opt in out
