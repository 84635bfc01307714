"""``facedub ui``: the local web app over the same stage functions as the CLI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from facedub.cli._options import limit

DEFAULT_PROJECTS = "~/facedub-projects"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ui",
        help="open the web app (local, in your browser)",
        description=(
            "Start facedub's web app: consent, face extraction, training, conversion and "
            "verification in a browser page. It serves this computer only (127.0.0.1) unless "
            "--host says otherwise, makes no outside requests, and keeps every project in the "
            "projects folder, where the command-line tools see the same projects."
        ),
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only). Another address "
                        "exposes the app to the network: every page, upload, file and API request then "
                        "needs the access token, and typing paths on this computer is off unless --allow-paths")
    p.add_argument("--token", default=None,
                   help="access token to require (at least 8 characters; default $FACEDUB_UI_TOKEN, or a random "
                        "one made and printed once at start when --host is not 127.0.0.1)")
    p.add_argument("--allow-paths", nargs="+", metavar="FOLDER", default=None,
                   help="let visitors type paths of files inside these folders (default: any path on 127.0.0.1, "
                        "none when shared)")
    p.add_argument("--project-quota", default="20gb",
                   help="most a project may hold in uploads (videos and consent evidence), e.g. 2gb (default 20gb)")
    limit(p, p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)"), lo=1, hi=65535)
    p.add_argument("--projects", default=os.environ.get("FACEDUB_PROJECTS", DEFAULT_PROJECTS),
                   help=f"folder holding the projects (default $FACEDUB_PROJECTS or {DEFAULT_PROJECTS})")
    p.add_argument("--max-upload", default="4gb",
                   help="largest file the page accepts as an upload, e.g. 500mb or 4gb (default 4gb)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.errors import BadInput
    from facedub.ui.server import TOKEN_ENV, is_loopback, resolve_token, serve, settings_for

    if not 0 < args.port < 65536:
        raise BadInput(f"--port {args.port}: not a port number (1-65535)")
    root = Path(args.projects).expanduser()
    from facedub.outputs import check_output, folder_kind

    if folder_kind(root) in ("faceset", "model"):
        raise BadInput(f"{args.projects}: is a {folder_kind(root)} folder, not a folder of projects; choose another --projects")
    if not root.is_dir():
        check_output(root, kind="project", create_parents=True, what="--projects")  # not inside a faceset or model, writable
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{root}: cannot create projects folder ({e.strerror})") from None
    token = resolve_token(args.host, args.token)
    settings = settings_for(args.host, args.allow_paths, args.project_quota)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}/"
    if not is_loopback(args.host):
        reporter.note(
            f"warning: listening on {args.host}: anyone who can reach this address and has the token can use the app, "
            "read your projects and run jobs."
        )
    if token and not (args.token or os.environ.get(TOKEN_ENV)):
        url += f"?token={token}"  # made now: printed this once, never stored
    elif token:
        url += "?token=<your token>"
    reporter.note(f"facedub ui: {url}  (projects in {root.resolve()}; Ctrl-C to stop)")
    serve(root, host=args.host, port=args.port, max_upload=args.max_upload, token=token, settings=settings)
    return 0
