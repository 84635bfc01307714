"""``facedub train --source FACESET --target FACESET --out MODEL``: train a swap model."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from facedub.cli._options import add, values
from facedub.train.config import DEFAULT_MINUTES, AugmentConfig, TrainConfig


def register(subparsers: Any) -> None:
    from facedub.train.config import MIN_FACES

    p = subparsers.add_parser(
        "train",
        help="train a face-swap model on the faces of two people",
        description=(
            "Train one encoder shared by both people and one decoder per person. Afterwards a face "
            "of the target person, decoded by the source decoder, shows the source person with the "
            "target's pose, expression and light; 'convert' applies that to the target video. "
            f"Each faceset needs at least {MIN_FACES} faces (a few hundred is better). Every "
            "--preview-every steps a preview grid and a loss curve are written into the model "
            "folder. Ctrl-C saves the model; run the same command with --resume to continue. "
            "Several processes or machines: launch with torchrun (see the README section 'Training on several processes, GPUs or machines')."
        ),
    )
    p.add_argument("--source", required=True, metavar="FACESET", help="faceset of the person whose face goes in")
    p.add_argument("--target", required=True, metavar="FACESET", help="faceset of the person in the footage you will convert")
    p.add_argument("--out", required=True, metavar="MODEL", help="folder to write the model to (must not hold a model unless --resume)")
    # Each option's name, help and default are defined once, in facedub.cli._options.
    add(p, TrainConfig, "arch")
    length = p.add_mutually_exclusive_group()
    add(p, TrainConfig, "steps", container=length)
    add(p, TrainConfig, "minutes", container=length)
    for name in ("batch_size", "lr", "seed"):
        add(p, TrainConfig, name)
    p.add_argument("--resume", action="store_true", help="continue training the model in --out exactly where it stopped")
    for name in ("preview_every", "save_every", "size", "coverage", "width", "precision", "threads", "device", "occlusion",
                 "ema", "lr_schedule", "warmup_steps", "eye_mouth_weight", "hf_weight"):
        add(p, TrainConfig, name)
    for name in ("warp", "warp_off_share", "flip", "colour_match"):
        add(p, AugmentConfig, name)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.outputs import check_output
    from facedub.train import train

    check_output(args.out, kind="model", inputs=[args.source, args.target], create_parents=True, what="--out")
    minutes = args.minutes if (args.minutes is not None or args.steps is not None) else DEFAULT_MINUTES
    config = TrainConfig(
        source=args.source,
        target=args.target,
        out=args.out,
        resume=args.resume,
        **{**values(args, TrainConfig), "minutes": minutes},
        augment=AugmentConfig(**values(args, AugmentConfig)),
    )
    s = train(config, reporter)
    if args.json:
        print(json.dumps(asdict(s)))
        return 0
    lines = [
        f"model: {s.out} ({s.arch}), {s.step} steps in total, {s.steps_run} now in {s.seconds / 60:.1f} min, {s.examples_per_s:.1f} examples/s",
    ]
    if s.val_source is not None:
        lines.append(
            f"validation loss: source {s.val_source:.4f}, target {s.val_target:.4f}; "
            f"SSIM source {s.val_ssim_source:.3f}, target {s.val_ssim_target:.3f}"
        )
    if s.plateaued:
        lines.append("validation loss has plateaued: more training will change little")
    if s.loss_curve:
        lines.append(f"loss curve: {s.loss_curve}")
    if s.previews:
        lines.append(f"latest preview: {s.previews[-1]}")
    print("\n".join(lines))
    return 0
