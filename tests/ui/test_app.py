"""The page's pieces as plain functions, the file guard, and the app building offline."""

from __future__ import annotations

import asyncio
import os

import pytest

from facedub.ui.server import FileGuard, is_loopback

gr = pytest.importorskip("gradio", reason="gradio (facedub[ui]) not installed")

from facedub.ui.app import build_app, job_html, train_stats_md, verify_html  # noqa: E402


def test_job_html_plain_messages():
    assert 'data-status="none"' in job_html(None)
    running = {"id": "j1", "kind": "extract", "label": "Extract source faces", "status": "running", "phase": "extract",
               "total": 40, "done": 10, "unit": "frame", "rate": 5.0, "eta_s": 6.0, "notes": []}
    h = job_html(running)
    assert "<progress value='10' max='40'>" in h and "about 6 s left" in h and 'data-kind="extract"' in h
    failed = dict(running, status="failed", error="x.mp4: <not> a video")
    h = job_html(failed)
    assert "Failed" in h and "x.mp4: &lt;not&gt; a video" in h and "<progress" not in h
    assert "Refused" in job_html(dict(running, status="refused", error="consent missing"))


def test_train_stats():
    st = {"kind": "train", "status": "running", "done": 5, "total": 20, "eta_s": 30.0,
          "metrics": {"step": 105, "loss_src": 0.51234, "loss_tgt": 0.4, "ex_s": 12.5, "eta": "0:30"}}
    md = train_stats_md(st)
    assert "**Step** 105" in md and "**Examples/s** 12.5" in md and "**ETA** 0:30" in md and "0.5123" in md
    assert train_stats_md({"kind": "extract"}) == ""


def _report(found: bool) -> dict:
    return {
        "path": "/p/result.mp4", "kind": "video", "marked": found, "output_id": "abc" if found else None,
        "watermark": {"found": found, "output_id": "abc" if found else None, "bits_agreeing": 170, "bits_total": 172,
                      "sync_z": 9.0, "score": 0.99, "scale": 1.0, "frames": 40},
        "tags": {"found": found, "output_id": None, "tags": {}},
        "manifest": {"found": found, "present": found, "path": "/p/result.mp4.facedub.json", "output_id": None,
                     "sha256_matches": found, "manifest": None},
        "c2pa": {"found": found, "present": found, "validation_state": "Valid" if found else None, "ai_generated": found,
                 "output_id": None, "failures": [], "error": None},
    }


def test_verify_badge():
    ok = verify_html(_report(True))
    assert 'data-watermark="found"' in ok and "Watermark found" in ok and "Manifest matches" in ok
    assert "C2PA Valid, AI-generated" in ok and "170/172" in ok
    bad = verify_html(_report(False))
    assert 'data-watermark="missing"' in bad and "No watermark found" in bad and "C2PA none" in bad
    assert "Not verified" in verify_html(None)


def test_file_guard(tmp_path):
    cache = tmp_path / ".ui-cache"
    (cache / "h").mkdir(parents=True)
    (cache / "h" / "a.png").write_bytes(b"x")
    g = FileGuard(None, cache)
    assert g._allowed(str(cache / "h" / "a.png"))
    for bad in (str(tmp_path / "p" / "consent" / "source.json"), str(cache / ".." / "project.json"), "/etc/passwd",
                "https://example.com/x.png", "relative/path.png"):
        assert not g._allowed(bad), bad

    sent = []

    async def app(scope, receive, send):
        sent.append("app")

    async def send(msg):
        if msg["type"] == "http.response.start":
            sent.append(msg["status"])

    guard = FileGuard(app, cache)
    asyncio.run(guard({"type": "http", "path": "/gradio_api/file=/etc/passwd"}, None, send))
    asyncio.run(guard({"type": "http", "path": f"/gradio_api/file={cache}/h/a.png"}, None, send))
    asyncio.run(guard({"type": "http", "path": "/gradio_api/file=%2Fetc%2Fpasswd"}, None, send))
    asyncio.run(guard({"type": "http", "path": f"/gradio_api/file={cache}/h/..%2F..%2Fp%2Fproject.json"}, None, send))
    asyncio.run(guard({"type": "http", "path": "/gradio_api/file/etc/passwd"}, None, send))
    asyncio.run(guard({"type": "http", "path": "/gradio_api/info"}, None, send))
    assert sent == [403, "app", 403, 403, 403, "app"]


def test_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("127.1.2.3") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_build_app_offline(tmp_path):
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
    demo = build_app(tmp_path / "projects")
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    for needed in ("create-btn", "source-consent-save", "source-gallery", "train-btn", "conv-forehead", "conv-sharpen", "render-btn", "result-video", "verify-box",
                   "swap-btn", "swap-stop", "swap-continue", "swap-minutes", "swap-source-evidence", "swap-target-synthetic", "swap-verify", "train-minutes"):
        assert needed in ids
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs[0] == "Swap" and tabs[1:] == ["1 · Consent", "2 · Faces", "3 · Train", "4 · Convert", "5 · Result"]


def test_page_builders_are_small():
    """build_app() only assembles: each page has its own builder, none of them long."""
    import inspect

    from facedub.ui import app, pages

    assert len(inspect.getsource(app.build_app).splitlines()) <= 40
    for fn in (pages.swap_page, pages.consent_page, pages.faces_page, pages.train_page, pages.convert_page, pages.result_page):
        assert len(inspect.getsource(fn).splitlines()) <= 110, fn.__name__


def test_budget_table_quotes_the_benchmark():
    """Every figure the Swap page promises for a budget is in BENCHMARKS.md's quality section."""
    import re
    from pathlib import Path

    from facedub.ui.render import BUDGETS, budget_md

    bench = (Path(__file__).resolve().parents[2] / "BENCHMARKS.md").read_text()
    section = bench[bench.index("<!-- bench:quality -->"):bench.index("<!-- /bench:quality -->")]
    lite = section[section.index("### `lite`"):section.index("### `original`")]
    for minutes, text in BUDGETS:
        row = next(r for r in lite.splitlines() if r.startswith(f"| {minutes} | "))
        for fig in re.findall(r"\d[\d,.]*", text):
            fig = fig.rstrip(".,").replace(",", "")
            assert any(f"| {minutes} |" in r and fig in r for r in lite.splitlines()), (minutes, fig, row)
    assert "| 10 min |" in budget_md()


def test_convert_settings_carry_forehead_and_sharpen():
    from facedub.errors import BadInput
    from facedub.ui import tasks

    cfg = tasks.convert_settings("hull", "none", "alpha", forehead=0.0, sharpen=1.5)
    assert (cfg.mask, cfg.forehead, cfg.sharpen) == ("hull", 0.0, 1.5)
    unset = tasks.convert_settings("hull", "none", "alpha")
    assert unset.forehead == type(unset)().forehead and unset.sharpen == 0.0
    with pytest.raises(BadInput, match="forehead"):
        tasks.convert_settings("hull", "none", "alpha", forehead=1.5)


class _NetRecorder:
    """Record (and refuse) every socket connection or name lookup beyond loopback."""

    LOCAL = ("127.", "::1", "localhost", "0.0.0.0")

    def __init__(self, monkeypatch):
        import socket

        self.outside: list[str] = []
        real_connect, real_connect_ex, real_gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
        rec = self

        def local(host) -> bool:
            return host is None or str(host).startswith(rec.LOCAL) or str(host) in ("", "::")

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
                rec.outside.append(f"connect {address}")
                raise ConnectionRefusedError(f"test: no outside connections ({address})")
            return real_connect(sock, address)

        def connect_ex(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
                rec.outside.append(f"connect_ex {address}")
                return 111
            return real_connect_ex(sock, address)

        def getaddrinfo(host, *a, **k):
            if not local(host if not isinstance(host, bytes) else host.decode()):
                rec.outside.append(f"lookup {host}")
                raise socket.gaierror(f"test: no outside lookups ({host})")
            return real_gai(host, *a, **k)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_app_start_and_page_load_open_no_outside_connection(tmp_path, monkeypatch):
    """Records every connect / name lookup beyond loopback while the server app starts (its
    lifespan too) and a page loads with its config, API info, theme and the project list; fails
    on any. (Checked by hand to fail: a socket.create_connection to 10.255.255.1 added to
    make_app makes this test fail with that address.)"""
    from starlette.testclient import TestClient

    from facedub.ui.server import make_app

    net = _NetRecorder(monkeypatch)
    app = make_app(tmp_path / "projects", "5mb")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for path in ("/", "/config", "/gradio_api/info", "/theme.css", "/manifest.json"):
            client.get(path)
        r = client.get("/")
        assert r.status_code == 200 and "<html" in r.text.lower()
        assert "googleapis" not in r.text and "cdn" not in r.text.lower().replace("cdn_", "")
    import time

    time.sleep(1.0)  # a background analytics/version-check thread would have fired by now
    assert net.outside == []
