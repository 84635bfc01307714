"""Shared on the network: every route needs the token; typed paths off; upload quota; handler
bugs keep their traceback in a log and show one line."""

from __future__ import annotations

import html
import re

import pytest

gr = pytest.importorskip("gradio", reason="gradio (facedub[ui]) not installed")

from facedub.errors import BadInput  # noqa: E402
from facedub.ui.server import TOKEN_COOKIE, make_app, resolve_token, settings_for  # noqa: E402
from facedub.ui.settings import UiSettings, check_quota, parse_size  # noqa: E402

TOKEN = "test-token-0123456789"


def _routes(app, prefix=""):
    """(path, methods, is_websocket) of every route of the app, mounted apps included."""
    from starlette.routing import Mount, WebSocketRoute

    for r in getattr(app, "routes", []):
        if isinstance(r, Mount):
            yield from _routes(r.app, prefix + r.path)
        elif hasattr(r, "original_router"):  # FastAPI's included router (gradio's API routes)
            ctx = getattr(r, "include_context", None)
            yield from _routes(r.original_router, prefix + (getattr(ctx, "prefix", "") or ""))
        elif getattr(r, "path", None) is None:
            raise AssertionError(f"a route this test cannot enumerate: {r!r}")
        else:
            yield prefix + r.path, sorted(getattr(r, "methods", None) or {"GET"}), isinstance(r, WebSocketRoute)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path) or "/"


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    from starlette.testclient import TestClient

    root = tmp_path_factory.mktemp("projects")
    app = make_app(root, "5mb", token=TOKEN, settings=settings_for("0.0.0.0", None, "1mb"))
    return app, TestClient(app, base_url="http://127.0.0.1")


def test_every_route_refuses_a_request_without_the_token(exposed):
    app, client = exposed
    routes = list(_routes(app))
    assert len(routes) > 20  # the page, config, upload, file, queue, api … (enumerated, not listed)
    paths = {p for p, _m, _w in routes}
    for needed in ("/gradio_api/upload", "/config"):
        assert any(p.endswith(needed) for p in paths), needed
    assert any("file" in p for p in paths)
    checked = 0
    for path, methods, ws in routes:
        url = _concrete(path)
        if ws:
            from starlette.websockets import WebSocketDisconnect

            with pytest.raises(WebSocketDisconnect):
                with client.websocket_connect(url) as s:
                    s.receive_text()
            checked += 1
            continue
        for m in methods:
            if m == "HEAD":
                continue
            for bad in ({}, {"headers": {"x-facedub-token": "wrong-token-000"}}, {"headers": {"cookie": f"{TOKEN_COOKIE}=nope-nope-nope"}}):
                client.cookies.clear()
                r = client.request(m, url, follow_redirects=False, **bad)
                assert r.status_code == 401, (m, url, r.status_code, bad)
                assert b"login needed" in r.content
                checked += 1
    assert checked > 60
    r = client.get("/no/such/route", follow_redirects=False)
    assert r.status_code == 401


def test_token_opens_the_page_then_a_cookie_carries_it(exposed):
    _app, client = exposed
    client.cookies.clear()
    r = client.get(f"/?token={TOKEN}&project=x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?project=x"
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
    r = client.get("/config")  # the cookie was kept by the client
    assert r.status_code == 200 and "components" in r.json()
    client.cookies.clear()
    assert client.get("/config", headers={"x-facedub-token": TOKEN}).status_code == 200
    assert client.get("/config", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    # uploads are refused without it, and the file guard still applies with it
    assert client.post("/gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 401
    r = client.post("/gradio_api/upload", files={"files": ("a.txt", b"x")}, headers={"x-facedub-token": TOKEN})
    assert r.status_code == 200
    r = client.get("/gradio_api/file=/etc/passwd", headers={"x-facedub-token": TOKEN})
    assert r.status_code == 403


def test_token_policy(monkeypatch):
    monkeypatch.delenv("FACEDUB_UI_TOKEN", raising=False)
    assert resolve_token("127.0.0.1", None) is None
    made = resolve_token("0.0.0.0", None)
    assert made and len(made) >= 24 and made != resolve_token("0.0.0.0", None)
    assert resolve_token("0.0.0.0", "my-secret-1") == "my-secret-1"
    monkeypatch.setenv("FACEDUB_UI_TOKEN", "from-env-123")
    assert resolve_token("192.168.1.5", None) == "from-env-123"
    with pytest.raises(BadInput, match="--token"):
        resolve_token("0.0.0.0", "short")
    from facedub.ui.server import serve

    with pytest.raises(ValueError, match="token"):
        serve("/nonexistent", host="0.0.0.0", token=None)


def test_typed_paths_off_when_shared_or_limited_to_folders(tmp_path):
    allowed = tmp_path / "videos"
    allowed.mkdir()
    (allowed / "a.mp4").write_bytes(b"x")
    shared = settings_for("0.0.0.0", None, None)
    assert not shared.paths_enabled
    with pytest.raises(BadInput, match="off for this server"):
        shared.check_local_path(str(allowed / "a.mp4"))
    local = settings_for("127.0.0.1", None, None)
    assert local.check_local_path("/anything") == "/anything"
    limited = settings_for("0.0.0.0", [str(allowed)], None)
    assert limited.check_local_path(str(allowed / "a.mp4")) == str((allowed / "a.mp4").resolve())
    for bad in ("/etc/passwd", str(allowed / ".." / "a.mp4"), str(tmp_path)):
        with pytest.raises(BadInput, match="outside the folders"):
            limited.check_local_path(bad)


def test_upload_quota(tmp_path):
    from facedub.project import create_project, import_upload

    assert parse_size("500mb") == 500 * 1024**2 and parse_size("2GB") == 2 * 1024**3 and parse_size("1024") == 1024
    with pytest.raises(BadInput):
        parse_size("lots")
    p = create_project(tmp_path / "projects", "q")
    cfg = UiSettings(project_quota=3000)
    f = tmp_path / "a.bin"
    f.write_bytes(b"0" * 2000)
    check_quota(cfg, p.root, [f])
    import_upload(p, "source", f)
    with pytest.raises(BadInput, match="quota"):
        check_quota(cfg, p.root, [f])  # 4000 > 3000
    check_quota(UiSettings(project_quota=None), p.root, [f])


def _handler(app, name, elem_id=None):
    for bf in app.fns.values():
        if getattr(bf.fn, "__name__", None) == name and (elem_id is None or any(getattr(i, "elem_id", None) == elem_id for i in bf.inputs)):
            return bf.fn
    raise LookupError(name)


def test_shared_page_refuses_typed_paths_and_uploads_over_quota(tmp_path):
    from facedub.project import create_project
    from facedub.ui.app import build_app

    root = tmp_path / "projects"
    create_project(root, "p")
    demo = build_app(root, settings=UiSettings(local_paths=(), project_quota=1000))
    box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "source-path")
    assert box.visible is False
    on_use = _handler(demo, "on_use", "source-path")
    out = on_use("p", None, "/etc/passwd")
    assert "off for this server" in html.unescape(out[-1]) and 'class="fd-msg err"' in out[-1]
    big = tmp_path / "big.mp4"
    big.write_bytes(b"0" * 2000)
    out = on_use("p", [str(big)], "")
    assert "quota" in html.unescape(out[-1])
    assert not (root / "p" / "inputs" / "source").exists() or not any((root / "p" / "inputs" / "source").iterdir())


def test_handler_bug_keeps_traceback_in_log_and_shows_one_line(tmp_path, monkeypatch):
    from facedub.ui import app as app_mod
    from facedub.ui.app import ERROR_LOG, build_app

    root = tmp_path / "projects"
    demo = build_app(root)

    def boom(*a, **k):
        raise KeyError("deep inside")

    monkeypatch.setattr(app_mod, "create_project", boom)
    out = _handler(demo, "on_create")("x")
    msg = html.unescape(out[-1])
    assert "internal error: KeyError: 'deep inside'" in msg and ERROR_LOG in msg
    assert "Traceback" not in msg and msg.count("\n") == 0
    log = (root / ERROR_LOG).read_text()
    assert "Traceback (most recent call last)" in log and "boom" in log and "KeyError" in log
