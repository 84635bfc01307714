"""``facedub dataset SPEC --out FOLDER``: a labelled deepfake-detection dataset from consented clips."""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.batch.cluster import add_cluster_argument


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dataset",
        help="build a labelled deepfake-detection dataset (real and swapped clips, masks, labels, splits)",
        description=(
            "Build a dataset for detector research from the TOML file SPEC: identities with their consent "
            "records, and pairs (source, target, a trained model, the target's clips). Writes real and "
            "swapped clips through the same decoder and encoder, a watermark of the same strength on both "
            "(the real clips' says 'pristine'), per-frame manipulation masks (the exact paste alpha), JSON "
            "labels and train/val/test splits by identity, in a FaceForensics++-like layout. Every identity "
            "needs a valid consent record. The build resumes where it stopped; FOLDER appears only when "
            "every clip is done."
        ),
    )
    p.add_argument("spec", metavar="SPEC", help="the dataset spec (TOML; see the README's 'Datasets for detector research')")
    p.add_argument("--out", required=True, metavar="FOLDER", help="the dataset folder to create (must not exist)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_cluster_argument(p, "the dataset's items (one per pair and clip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from dataclasses import asdict

    from pathlib import Path

    from facedub.dataset import build_dataset
    from facedub.outputs import check_output

    if not Path(args.out).exists():  # an existing one is refused by build_dataset, by name
        check_output(args.out, inputs=[args.spec], what="--out")  # not inside a model or faceset, writable
    if getattr(args, "cluster", None):
        from facedub.batch.cluster import connect
        from facedub.batch.dataset import build_dataset_on

        with connect(args.cluster) as executor:
            s = build_dataset_on(executor, args.spec, args.out, reporter)
    else:
        s = build_dataset(args.spec, args.out, reporter)
    reporter.close()
    if args.json:
        print(json.dumps(asdict(s), ensure_ascii=False))
    else:
        print(f"{s.output}: {s.items} swapped and {s.real} real clips ({s.built} built in this run)")
        for name, ids in s.splits.items():
            print(f"  {name}: {', '.join(ids) if ids else '(empty)'}")
        if s.mask_iou_min is not None:
            print(f"  masks vs changed pixels: IoU min {s.mask_iou_min:.4f}, mean {s.mask_iou_mean:.4f}")
        for n in s.notes:
            print(f"  note: {n}")
    return 0
