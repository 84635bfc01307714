"""``facedub extract INPUT... --out FACESET``: aligned face crops of one person."""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.cli._options import limit


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
    limit(p, p.add_argument("--every", type=int, default=1, metavar="N", help="look at every Nth video frame only (default 1 = every frame); neighbouring frames are near-duplicates"), lo=1)
    limit(p, p.add_argument("--min-size", type=int, default=40, metavar="PX", help="leave out faces smaller than this many pixels across in the video (default 40)"), lo=0)
    limit(p, p.add_argument(
        "--blur-threshold",
        type=float,
        default=None,
        metavar="X",
        help=(
            "leave out faces whose sharpness score (variance of the Laplacian of the crop, as faceset.json records it) "
            "is below X (0 keeps all). Default: relative — only faces far less sharp than the rest of the faceset "
            "go, so low-resolution footage keeps its good faces"
        ),
    ), lo=0)
    limit(p, p.add_argument(
        "--match-distance",
        type=float,
        default=0.5,
        metavar="D",
        help="how alike two faces must be to count as one person: identity-descriptor distance below D (default 0.5; lower is stricter)",
    ), lo=0, lo_open=True, hi=2)
    p.add_argument("--consent", metavar="FILE", help="consent record (JSON) of the person, stored with the faceset")
    limit(p, p.add_argument("--max-frames", type=int, metavar="N", help="stop each video after N looked-at frames (a quick try; run again without it to finish)"), lo=1)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.extract import ExtractConfig, extract_faceset

    config = ExtractConfig(
        every=args.every,
        min_size=args.min_size,
        blur_threshold=args.blur_threshold,
        reference=args.reference,
        match_distance=args.match_distance,
        consent=args.consent,
        max_frames=args.max_frames,
    )
    summary = extract_faceset(args.inputs, args.out, config, reporter)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print("\n".join(summary.lines(notes=False)))  # the notes went to stderr as they came
    return 0
