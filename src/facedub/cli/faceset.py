"""``facedub faceset show FACESET``: counts, identity consistency, pose and sharpness, contact sheet."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from facedub.cli._options import limit


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
    limit(show, show.add_argument("--max-faces", type=int, default=80, metavar="N", help="at most this many faces on the sheet, spread evenly (default 80)"), lo=1)
    show.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    show.set_defaults(func=run)
    p.set_defaults(func=_usage(p))


def _usage(parser: argparse.ArgumentParser):  # noqa: ANN202
    def run_usage(args: argparse.Namespace, reporter: Any) -> int:
        parser.print_help()
        return 2

    return run_usage


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.errors import BadInput
    from facedub.faceset.show import contact_sheet, crop_problems, faceset_stats
    from facedub.faceset.store import FACESET_JSON, faceset_dir, load_faceset
    from facedub.outputs import check_output

    fs = load_faceset(args.faceset)
    folder = faceset_dir(args.faceset)
    default_sheet = folder / "contact_sheet.png"
    sheet = Path(args.sheet) if args.sheet else default_sheet
    check_output(sheet, inputs=[folder, folder / FACESET_JSON, *(folder / f.file for f in fs.faces)], allowed=[default_sheet], what="--sheet")
    bad = crop_problems(fs, folder)
    if bad:
        shown = "; ".join(f"{name} {why}" for name, why in bad[:3]) + (" …" if len(bad) > 3 else "")
        raise BadInput(f"{folder}: {len(bad)} of {len(fs.faces)} face crops are missing or unreadable ({shown}); "
                       "the faceset is damaged")
    stats = faceset_stats(fs)
    try:
        contact_sheet(fs, folder, sheet, max_faces=max(1, args.max_faces))
    except BadInput:
        raise
    except OSError as e:
        raise BadInput(f"{sheet}: cannot write the contact sheet ({e.strerror or e})") from None
    if args.json:
        d = stats.to_dict()
        d["contact_sheet"] = str(sheet)
        print(json.dumps(d))
    else:
        print("\n".join(stats.lines()))
        print(f"  contact sheet: {sheet}")
    return 0
