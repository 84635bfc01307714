"""``facedub train --source FACESET --target FACESET --out MODEL``: train a swap model."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from facedub.cli._options import limit
from facedub.model.names import ARCH_NAMES, DEFAULT_ARCH

DEFAULT_MINUTES = 60.0


def register(subparsers: Any) -> None:
    from facedub.train.config import MIN_FACES, PRECISIONS

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
    p.add_argument(
        "--arch",
        choices=ARCH_NAMES,
        help=f"model architecture: 'lite' for CPUs (default for new models: {DEFAULT_ARCH}), 'original' the 2018 model, "
        "'hd' 128 px with a learned mask for GPUs, 'saehd' 256 px in the class of DeepFaceLab's SAEHD for CUDA GPUs; "
        "'facedub model show' describes them",
    )
    length = p.add_mutually_exclusive_group()
    limit(p, length.add_argument("--steps", type=int, metavar="N", help="train N steps now (added to the model's steps when resuming)"), lo=1)
    limit(p, length.add_argument("--minutes", type=float, metavar="M", help=f"train for M minutes of wall time (default {DEFAULT_MINUTES:g} when --steps is not given)"), lo=0, lo_open=True)
    limit(p, p.add_argument("--batch-size", type=int, metavar="B", help="faces of each person per step (default: the architecture's; lower it if memory runs out)"), lo=1)
    limit(p, p.add_argument("--lr", type=float, metavar="X", help="learning rate (default: the architecture's)"), lo=0, lo_open=True, hi=1)
    limit(p, p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed for weights, data order and augmentation (default 0)"), lo=0, hi=2**32 - 1)
    p.add_argument("--resume", action="store_true", help="continue training the model in --out exactly where it stopped")
    limit(p, p.add_argument("--preview-every", type=int, default=200, metavar="N", help="write a preview grid, validation loss and loss curve every N steps (default 200; 0 = only at the end)"), lo=0)
    limit(p, p.add_argument("--save-every", type=int, default=1000, metavar="N", help="save the model every N steps (default 1000); it is always saved at the end and on Ctrl-C"), lo=1)
    limit(p, p.add_argument("--size", type=int, metavar="PX", help="model input size in pixels, a multiple of 16 (default: the architecture's)"), lo=16, hi=1024, multiple=16)
    limit(p, p.add_argument("--coverage", type=float, metavar="F", help="share of the aligned face crop the model sees, 0.3-1.0 (default 0.6875)"), lo=0.3, hi=1.0)
    limit(p, p.add_argument("--width", type=float, metavar="F", help="channel multiplier of the architecture (default 1.0; smaller trains faster but learns less)"), lo=0, lo_open=True, hi=8)
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="number format: auto = bfloat16 mixed precision where the CPU/GPU supports it (about 2x faster), fp32 = full precision",
    )
    limit(p, p.add_argument("--threads", type=int, metavar="N", help="CPU threads to use (default: all cores)"), lo=1)
    p.add_argument("--device", metavar="DEV", help="cpu, cuda or cuda:N (default: the GPU when there is one)")
    p.add_argument(
        "--occlusion",
        choices=("auto", "off"),
        default="off",
        help="auto: what the occlusion model finds in front of a training face (a hand, a microphone, glasses) carries no loss, "
        "so the decoders do not learn to paint it (masks computed once per face and cached); off: every pixel counts (default), "
        "the same name and meaning as convert's --occlusion",
    )
    p.add_argument("--no-warp", action="store_true", help="turn off the random grid warp of the inputs")
    p.add_argument("--no-flip", action="store_true", help="turn off random horizontal flips")
    limit(p, p.add_argument("--colour-match", type=float, default=0.5, metavar="P", help="share of faces given the other person's colour statistics (default 0.5; 0 = off)"), lo=0, hi=1)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.outputs import check_output
    from facedub.train import AugmentConfig, TrainConfig, train

    check_output(args.out, kind="model", inputs=[args.source, args.target], create_parents=True, what="--out")
    minutes = args.minutes if (args.minutes is not None or args.steps is not None) else DEFAULT_MINUTES
    config = TrainConfig(
        source=args.source,
        target=args.target,
        out=args.out,
        arch=args.arch,
        steps=args.steps,
        minutes=minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        resume=args.resume,
        preview_every=args.preview_every,
        save_every=args.save_every,
        size=args.size,
        coverage=args.coverage,
        width=args.width,
        precision=args.precision,
        augment=AugmentConfig(warp=not args.no_warp, flip=not args.no_flip, colour_match=args.colour_match),
        threads=args.threads,
        device=args.device,
        occlusion=args.occlusion,
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
