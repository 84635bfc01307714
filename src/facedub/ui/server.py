"""Serve the facedub web app on this computer.

Safe defaults: binds 127.0.0.1; Gradio analytics off and Hugging Face Hub offline (set
before gradio is imported, so nothing looks up outside hosts); every asset is served from
the installed package (no CDN, no web fonts); uploads are limited in size; and the file
route answers only for Gradio's own upload/cache folder — a project's files reach the
browser only as the copies the app hands out, never by a path typed into a URL.

Shared (``--host`` other than loopback): every request — page, upload, file, API, websocket —
needs the access token (:class:`TokenGuard`); the "path on this computer" box is off unless
folders are allowed; uploads count against a per-project quota.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD = "4gb"
CACHE_DIRNAME = ".ui-cache"
TOKEN_ENV = "FACEDUB_UI_TOKEN"
TOKEN_COOKIE = "facedub_token"
TOKEN_HEADER = b"x-facedub-token"


def _offline_env(projects_root: Path) -> None:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ["GRADIO_TEMP_DIR"] = str(projects_root / CACHE_DIRNAME)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "::1"):
        return True
    try:
        return socket.inet_aton(host)[0] == 127
    except OSError:
        return False


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class FileGuard:
    """ASGI middleware: ``…/file=PATH`` requests must name a file inside ``cache_dir``.

    Gradio would also serve anything under ``allowed_paths`` (the projects root, which it
    needs so that handlers may return project files); this keeps consent evidence,
    uploaded inputs and models from being fetched directly by a guessed path.
    """

    def __init__(self, app: Any, cache_dir: Path) -> None:
        self.app = app
        self.cache_dir = Path(cache_dir).resolve()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            path = scope.get("path", "")
            marker = "/file="
            if marker in path or "/file/" in path:
                raw = path.split(marker, 1)[1] if marker in path else path.split("/file/", 1)[1]
                # judge both the path as routed and once more decoded: neither may leave the cache
                if not (self._allowed(raw) and self._allowed(unquote(raw))):
                    await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
                    await send({"type": "http.response.body", "body": b"not allowed"})
                    return
        await self.app(scope, receive, send)

    def _allowed(self, raw: str) -> bool:
        if "://" in raw:
            return False
        try:
            p = Path(raw)
            p = (p if p.is_absolute() else Path.cwd() / p).resolve()
        except (OSError, RuntimeError, ValueError):
            return False
        return p == self.cache_dir or self.cache_dir in p.parents


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenGuard:
    """ASGI middleware: every HTTP and websocket request must carry the access token.

    The token comes as ``?token=…`` (the address printed at start: answered with a redirect
    that sets an HttpOnly, SameSite=Strict cookie and drops the token from the address), as
    that cookie (what the page's own requests carry), or as an ``X-Facedub-Token`` header /
    ``Authorization: Bearer …`` (scripts). Anything else gets 401 and no content.
    """

    def __init__(self, app: Any, token: str) -> None:
        if not token or len(token) < 8:
            raise ValueError("the access token must be at least 8 characters")
        self.app = app
        self.token = token.encode("utf-8")

    def _ok(self, value: str | bytes | None) -> bool:
        if not value:
            return False
        v = value.encode("utf-8") if isinstance(value, str) else value
        return hmac.compare_digest(v, self.token)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers = dict(scope.get("headers") or [])
        query = parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
        from_query = next((v for k, v in query if k == "token"), None)
        cookie = _cookie(headers.get(b"cookie", b"").decode("latin-1"), TOKEN_COOKIE)
        auth = headers.get(b"authorization", b"").decode("latin-1")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if scope["type"] == "http" and self._ok(from_query) and scope.get("method") in ("GET", "HEAD"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            where = (scope.get("root_path", "") + scope.get("path", "/")) + (f"?{rest}" if rest else "")
            await send({"type": "http.response.start", "status": 303, "headers": [
                (b"location", where.encode("latin-1")),
                (b"set-cookie", f"{TOKEN_COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/".encode("latin-1")),
                (b"cache-control", b"no-store"),
            ]})
            await send({"type": "http.response.body", "body": b""})
            return
        if any(self._ok(v) for v in (from_query, cookie, bearer, headers.get(TOKEN_HEADER))):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"facedub: login needed. Open the address with ?token=... that 'facedub ui' printed.\n"})


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def make_app(
    projects_root: str | Path,
    max_upload: str | int = DEFAULT_MAX_UPLOAD,
    token: str | None = None,
    settings: Any = None,
) -> Any:
    """The ASGI app (FastAPI with the Gradio page mounted at /). With ``token`` every route
    needs it (:class:`TokenGuard`); ``settings`` is a :class:`facedub.ui.settings.UiSettings`."""
    root = Path(projects_root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    _offline_env(root)
    (root / CACHE_DIRNAME).mkdir(exist_ok=True)

    import fastapi
    import gradio as gr

    from facedub.ui.app import CSS, build_app

    demo = build_app(root, settings=settings)
    demo.queue(default_concurrency_limit=4)
    api = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    api = gr.mount_gradio_app(
        api,
        demo,
        path="",
        allowed_paths=[str(root)],
        max_file_size=max_upload,
        show_error=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        footer_links=[],
        css=CSS,
    )
    api.add_middleware(FileGuard, cache_dir=root / CACHE_DIRNAME)
    if token:
        api.add_middleware(TokenGuard, token=token)  # added last: the outermost, before anything else
    return api


def resolve_token(host: str, token: str | None) -> str | None:
    """The access token to require: the one given (option or $FACEDUB_UI_TOKEN), a new random
    one when the app is shared, None on loopback without one."""
    given = token or os.environ.get(TOKEN_ENV) or None
    if given is not None and len(given) < 8:
        from facedub.errors import BadInput

        raise BadInput("--token: use at least 8 characters (or leave it out and a random one is made)")
    if given:
        return given
    return None if is_loopback(host) else new_token()


def settings_for(host: str, allow_paths: list[str] | None, project_quota: str | int | None) -> Any:
    """The visitor's limits: typed paths on for loopback (any path) unless ``allow_paths``
    lists folders; off when shared unless folders are listed; the per-project upload quota."""
    from facedub.errors import BadInput
    from facedub.ui.settings import DEFAULT_PROJECT_QUOTA, UiSettings, parse_size

    paths: tuple[str, ...] | None
    if allow_paths:
        for a in allow_paths:
            if not Path(a).expanduser().is_dir():
                raise BadInput(f"{a}: --allow-paths needs existing folders")
        paths = tuple(str(Path(a).expanduser().resolve()) for a in allow_paths)
    else:
        paths = None if is_loopback(host) else ()
    quota = parse_size(project_quota if project_quota is not None else DEFAULT_PROJECT_QUOTA, "--project-quota")
    return UiSettings(local_paths=paths, project_quota=quota)


def serve(
    projects_root: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_upload: str | int = DEFAULT_MAX_UPLOAD,
    log_level: str = "warning",
    token: str | None = None,
    settings: Any = None,
) -> None:
    """Run the server until Ctrl-C (blocking). Exposed hosts need ``token`` (see resolve_token)."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise ValueError("serving beyond this computer needs an access token")
    app = make_app(projects_root, max_upload, token=token, settings=settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m facedub.ui.server --projects DIR --port N`` (used by the browser test)."""
    import argparse

    ap = argparse.ArgumentParser(prog="facedub-ui-server")
    ap.add_argument("--projects", required=True)
    ap.add_argument("--host", default=DEFAULT_HOST)
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--max-upload", default=DEFAULT_MAX_UPLOAD)
    ap.add_argument("--token", default=None)
    ap.add_argument("--allow-paths", nargs="*", default=None)
    ap.add_argument("--project-quota", default=None)
    a = ap.parse_args(argv)
    token = resolve_token(a.host, a.token)
    settings = settings_for(a.host, a.allow_paths, a.project_quota)
    if token and not (a.token or os.environ.get(TOKEN_ENV)):
        print(f"access token: {token}", file=sys.stderr, flush=True)
    serve(a.projects, a.host, a.port, a.max_upload, token=token, settings=settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
