"""``facedub eval OUT.mp4 --target TARGET_VIDEO --source FACESET``: how good is a swap?"""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.cli._options import add, values
from facedub.evaluate.core import EvalConfig


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="measure how good a swapped video is (identity, expression, pose, stability, background)",
        description=(
            "Compare a swapped video with the target video it was made from, frame by frame, and with "
            "the source person's faceset. Reports: the share of frames whose face reads as the source "
            "person, expression and head-pose error, frame-to-frame jitter relative to the target video, "
            "and how untouched the background is (PSNR outside the face). Landmark metrics use every "
            "frame; identity descriptors (slow) use every Nth frame (--every)."
        ),
    )
    p.add_argument("output", metavar="OUT.mp4", help="the swapped video to judge")
    p.add_argument("--target", required=True, metavar="TARGET_VIDEO", help="the video the swap was made from (same frames, same size)")
    p.add_argument("--source", required=True, metavar="FACESET", help="faceset folder of the source person (the face that should appear)")
    add(p, EvalConfig, "every")  # name, help and default defined once, in facedub.cli._options
    add(p, EvalConfig, "max_frames")
    p.add_argument("--report", metavar="report.html", help="also write a self-contained HTML report with plots over time and before/after frames")
    p.add_argument("--json", action="store_true", help="print the full result (summary and per-frame records) as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.evaluate import evaluate
    from facedub.evaluate.report import summary_rows
    from facedub.outputs import check_output

    if args.report:  # checked before the evaluation, not after it
        check_output(args.report, inputs=[args.output, args.target, args.source], what="--report")
    config = EvalConfig(report_html=args.report, **values(args, EvalConfig))
    report = evaluate(args.output, args.target, args.source, config, reporter)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    width = max(len(k) for k, _, _ in summary_rows(report))
    lines = [f"eval of {report.output} (target {report.target}, source {report.source_faceset})"]
    for k, v, how in summary_rows(report):
        lines.append(f"  {k:<{width}}  {v}" + (f"   [{how}]" if how else ""))
    for n in report.notes:
        lines.append(f"  note: {n}")
    if report.report_html:
        lines.append(f"  report: {report.report_html}")
    print("\n".join(lines))
    return 0
