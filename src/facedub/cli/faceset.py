"""``facedub faceset show FACESET``: counts, identity consistency, pose and sharpness, contact sheet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "faceset",
        help="inspect a faceset (counts, identity, pose, sharpness, contact sheet)",
        description="Inspect a faceset made by 'facedub extract'.",
    )
    sub = p.add_subparsers(dest="faceset_command", metavar="ACTION", parser_class=type(p))
    show = sub.add_parser(
        "show",
        help="print statistics and write a contact-sheet PNG of the faces",
        description=(
            "Print how many faces a faceset holds, whether they look like one person (distance of "
            "each identity descriptor to their mean; below 0.6 is the same person), the spread of "
            "head pose and sharpness, and write a contact sheet: a grid of the faces to look at."
        ),
    )
    show.add_argument("faceset", metavar="FACESET", help="faceset folder (holding faceset.json)")
    show.add_argument("--sheet", metavar="PNG", help="where to write the contact sheet (default: FACESET/contact_sheet.png)")
    show.add_argument("--max-faces", type=int, default=80, metavar="N", help="at most this many faces on the sheet, spread evenly (default 80)")
    show.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    show.set_defaults(func=run)
    p.set_defaults(func=_usage(p))


def _usage(parser: argparse.ArgumentParser):  # noqa: ANN202
    def run_usage(args: argparse.Namespace, reporter: Any) -> int:
        parser.print_help()
        return 2

    return run_usage


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.faceset.show import contact_sheet, faceset_stats
    from facedub.faceset.store import faceset_dir, load_faceset

    fs = load_faceset(args.faceset)
    folder = faceset_dir(args.faceset)
    stats = faceset_stats(fs)
    sheet = Path(args.sheet) if args.sheet else folder / "contact_sheet.png"
    try:
        contact_sheet(fs, folder, sheet, max_faces=max(1, args.max_faces))
    except OSError as e:
        from facedub.errors import BadInput

        raise BadInput(f"{sheet}: cannot write the contact sheet ({e.strerror or e})") from None
    if args.json:
        d = stats.to_dict()
        d["contact_sheet"] = str(sheet)
        print(json.dumps(d))
    else:
        print("\n".join(stats.lines()))
        print(f"  contact sheet: {sheet}")
    return 0
