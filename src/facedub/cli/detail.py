"""``facedub detail --model MODEL --faceset FACESET``: train a model's per-identity detail stage."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from facedub.cli._options import add, limit, values

DEFAULT_MINUTES = 5.0


def register(subparsers: Any) -> None:
    from facedub.convert.detail import SIDES, DetailConfig

    p = subparsers.add_parser(
        "detail",
        help="train a model's detail stage: a sharper, larger face for one identity",
        description=(
            "Train a small network that turns the model's soft decoded face into one twice as large "
            "and sharper, learnt from the identity's own faceset (the decoder's reconstruction of each "
            "face against the face itself), so it adds that person's detail and nobody else's. It is "
            "stored in the model folder; 'facedub convert' uses it (--detail off to compare). Training "
            "the swap model further makes it stale: convert then skips it and says so."
        ),
    )
    p.add_argument("--model", required=True, metavar="MODEL", help="the model folder written by 'facedub train'")
    p.add_argument("--faceset", required=True, metavar="FACESET", help="faceset of the identity whose face goes in (the model's source; its target with --side target)")
    p.add_argument("--side", choices=SIDES, default="source", help="which decoder to refine: source (default; what convert puts in) or target (for convert --reverse)")
    length = p.add_mutually_exclusive_group()
    limit(p, length.add_argument("--minutes", type=float, metavar="M", default=None, help=f"train for M minutes (default {DEFAULT_MINUTES:g})"), lo=0, hi=10080, lo_open=True)
    limit(p, length.add_argument("--steps", type=int, metavar="N", default=None, help="train N steps instead of a time budget"), lo=1)
    add(p, DetailConfig, "seed")  # defined once, in facedub.cli._options (train's --seed)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from pathlib import Path

    from facedub.convert.detail import DetailConfig, train_detail
    from facedub.outputs import check_output

    # The stage's two files go into the model folder (the only files of it this command writes).
    files = [Path(args.model) / f"detail-{args.side}.{ext}" for ext in ("safetensors", "json")]
    for f in files:
        check_output(f, inputs=[args.faceset], allowed=files, what="--model")

    minutes = args.minutes if args.minutes is not None else (None if args.steps is not None else DEFAULT_MINUTES)
    res = train_detail(args.model, args.faceset, side=args.side, config=DetailConfig(**values(args, DetailConfig)), minutes=minutes, steps=args.steps, reporter=reporter)
    if args.json:
        print(json.dumps(asdict(res)))
    else:
        print(
            f"detail stage written to {res.path}: {res.steps} steps in {res.seconds / 60:.1f} min; held-out error "
            f"{res.val_l1:.2f} levels (plain upscale {res.val_l1_bilinear:.2f}), fine-detail error {res.val_hf:.2f} ({res.val_hf_bilinear:.2f})"
        )
    return 0
