"""Serve the facedub web app on this computer.

Safe defaults: binds 127.0.0.1; Gradio analytics off and Hugging Face Hub offline (set
before gradio is imported, so nothing looks up outside hosts); every asset is served from
the installed package (no CDN, no web fonts); uploads are limited in size; and the file
route answers only for Gradio's own upload/cache folder — a project's files reach the
browser only as the copies the app hands out, never by a path typed into a URL.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD = "4gb"
CACHE_DIRNAME = ".ui-cache"


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


def make_app(projects_root: str | Path, max_upload: str | int = DEFAULT_MAX_UPLOAD) -> Any:
    """The ASGI app (FastAPI with the Gradio page mounted at /)."""
    root = Path(projects_root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    _offline_env(root)
    (root / CACHE_DIRNAME).mkdir(exist_ok=True)

    import fastapi
    import gradio as gr

    from facedub.ui.app import CSS, build_app

    demo = build_app(root)
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
    return api


def serve(
    projects_root: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_upload: str | int = DEFAULT_MAX_UPLOAD,
    log_level: str = "warning",
) -> None:
    """Run the server until Ctrl-C (blocking)."""
    import uvicorn

    app = make_app(projects_root, max_upload)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m facedub.ui.server --projects DIR --port N`` (used by the browser test)."""
    import argparse

    ap = argparse.ArgumentParser(prog="facedub-ui-server")
    ap.add_argument("--projects", required=True)
    ap.add_argument("--host", default=DEFAULT_HOST)
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--max-upload", default=DEFAULT_MAX_UPLOAD)
    a = ap.parse_args(argv)
    if not is_loopback(a.host):
        print(f"warning: serving on {a.host}: anyone who can reach this address can use the app and its projects", file=sys.stderr)
    serve(a.projects, a.host, a.port, a.max_upload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
