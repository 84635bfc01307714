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
                        "exposes the app and your projects to the network: a warning is printed")
    limit(p, p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)"), lo=1, hi=65535)
    p.add_argument("--projects", default=os.environ.get("FACEDUB_PROJECTS", DEFAULT_PROJECTS),
                   help=f"folder holding the projects (default $FACEDUB_PROJECTS or {DEFAULT_PROJECTS})")
    p.add_argument("--max-upload", default="4gb",
                   help="largest file the page accepts as an upload, e.g. 500mb or 4gb (default 4gb)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.errors import BadInput
    from facedub.ui.server import is_loopback, serve

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
    if not is_loopback(args.host):
        reporter.note(
            f"warning: listening on {args.host}: anyone who can reach this address can use the app, "
            "read your projects and run jobs. There is no login."
        )
    reporter.note(f"facedub ui: http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/  (projects in {root.resolve()}; Ctrl-C to stop)")
    serve(root, host=args.host, port=args.port, max_upload=args.max_upload)
    return 0
