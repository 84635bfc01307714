"""``facedub verify FILE [--json]``: report the facedub marks a video, image or image sequence carries.

Exit codes: 0 when any facedub mark is found, 1 when none, 2 when the file cannot be read,
3 when marks are found but the file is not the one its manifest lists (changed since).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.cli._options import add_alias, limit


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check a video or image for facedub's watermark, tags, manifest and C2PA credentials",
        description=(
            "Look for every facedub mark in FILE and report each one separately: the invisible "
            "watermark (with its output id), metadata tags, the manifest JSON beside the file and "
            "embedded C2PA Content Credentials (an FFV1 .mkv has none: its manifest's sha256 is the "
            "check). Exit code 0 when any mark is found, 1 when none, 2 when the file cannot be read, 3 when "
            "marks are found but the file's sha256 is not the one its manifest lists (changed after facedub wrote it)."
        ),
    )
    p.add_argument("file", metavar="FILE", help="the video or image to check, or an image sequence: its folder or its pattern (shot.%%04d.exr)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every signal instead of text")
    # A count of frames, so --max-frames as in extract, eval and convert (--frames is convert's range).
    n = limit(p, p.add_argument("--max-frames", dest="max_frames", type=int, default=48, metavar="N",
                                help="largest number of video or sequence frames to examine for the watermark (default 48)"), lo=1)
    add_alias(p, "--frames", n)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.errors import BadInput
    from facedub.safety.verify import verify_file

    if args.max_frames < 1:
        raise BadInput(f"--max-frames must be 1 or more, got {args.max_frames}")
    from pathlib import Path

    from facedub.media.sequence import is_sequence

    if Path(args.file).is_dir() or is_sequence(args.file):
        from facedub.safety.sequence_marks import verify_sequence

        report = verify_sequence(args.file, max_frames=args.max_frames)
    else:
        report = verify_file(args.file, max_frames=args.max_frames)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(report.summary_lines()))
    if report.altered:
        return 3
    return 0 if report.marked else 1
