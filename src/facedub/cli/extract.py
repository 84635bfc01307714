"""``facedub extract INPUT... --out FACESET``: aligned face crops of one person."""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.cli._options import add, values
from facedub.extract.config import ExtractConfig


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "extract",
        help="find, align and save the faces of one person from videos or images",
        description=(
            "Find the faces in videos, images or folders of images, align each one to a standard "
            "position and save them as 256x256 PNG crops plus faceset.json (where each face came "
            "from, its landmarks, pose, sharpness and identity descriptor). Only one person is kept: "
            "the one matching --reference, or else the person seen most. Running the same command "
            "again resumes an interrupted extraction and skips what is already done."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files (MP4, MPG, WebM, anything FFmpeg reads), images, or folders of images")
    p.add_argument("--out", required=True, metavar="FACESET", help="folder to write the faceset to (created if needed)")
    p.add_argument("--reference", metavar="IMAGE", help="a photo of the person to keep; faces of anyone else are left out")
    # Each option's name, help and default are defined once, in facedub.cli._options.
    for name in ("every", "min_size", "blur_threshold", "match_distance"):
        add(p, ExtractConfig, name)
    p.add_argument("--consent", metavar="FILE", help="consent record (JSON) of the person, stored with the faceset")
    add(p, ExtractConfig, "max_frames")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.extract import extract_faceset

    config = ExtractConfig(reference=args.reference, consent=args.consent, **values(args, ExtractConfig))
    summary = extract_faceset(args.inputs, args.out, config, reporter)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print("\n".join(summary.lines(notes=False)))  # the notes went to stderr as they came
    return 0
