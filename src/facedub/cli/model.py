"""``facedub model show MODEL``: what a model is, how long it trained, its losses."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("model", help="inspect a trained model", description="Inspect a trained model folder.")
    sub = p.add_subparsers(dest="model_command", metavar="ACTION")
    show = sub.add_parser(
        "show",
        help="print what the model is, how long it trained and its losses",
        description="Print a model's architecture and settings, its training time and steps, its losses and the facesets and consent records it was trained with.",
    )
    show.add_argument("model", metavar="MODEL", help="model folder (holds model.json and weights.safetensors)")
    show.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    show.set_defaults(func=run)
    p.set_defaults(func=_usage(p))


def _usage(p: argparse.ArgumentParser):
    def run_usage(args: argparse.Namespace, reporter: Any) -> int:
        p.print_usage()
        return 2

    return run_usage


def describe(meta: dict[str, Any], weights_bytes: int | None = None) -> dict[str, Any]:
    """The facts ``model show`` prints, from ``model.json`` alone."""
    losses = meta.get("losses") or {}
    last = lambda k: (losses.get(k) or [None])[-1]  # noqa: E731
    val_best = None
    if losses.get("val_source") and losses.get("val_target"):
        sums = [a + b for a, b in zip(losses["val_source"], losses["val_target"])]
        i = min(range(len(sums)), key=sums.__getitem__)
        val_best = {"step": losses["val_step"][i], "source": losses["val_source"][i], "target": losses["val_target"][i]}
    cfg = meta.get("config") or {}
    fs = meta.get("facesets") or {}
    return {
        "arch": meta.get("arch"),
        "summary": meta.get("summary"),
        "size": cfg.get("size"),
        "coverage": cfg.get("coverage"),
        "config": cfg,
        "step": meta.get("step"),
        "examples": meta.get("examples"),
        "hours": round(float(meta.get("elapsed_s") or 0) / 3600, 3),
        "train": meta.get("train"),
        "loss_source": last("source"),
        "loss_target": last("target"),
        "val_step": last("val_step"),
        "val_source": last("val_source"),
        "val_target": last("val_target"),
        "val_ssim_source": last("val_ssim_source"),
        "val_ssim_target": last("val_ssim_target"),
        "val_best": val_best,
        "plateaued": meta.get("plateaued", False),
        "source_faceset": {k: (fs.get("source") or {}).get(k) for k in ("id", "path", "faces")},
        "target_faceset": {k: (fs.get("target") or {}).get(k) for k in ("id", "path", "faces")},
        "consent": meta.get("consent"),
        "created": meta.get("created"),
        "updated": meta.get("updated"),
        "weights_mb": round(weights_bytes / 1e6, 1) if weights_bytes else None,
    }


def check_files(folder: Any, meta: dict[str, Any]) -> None:
    """Every file model.json lists (the weights at least) is there, readable and unchanged; BadInput otherwise."""
    from facedub.errors import BadInput
    from facedub.fileio import sha256_file
    from facedub.model.checkpoint import MODEL_JSON, WEIGHTS

    files = meta.get("files") if isinstance(meta.get("files"), dict) else {}
    if WEIGHTS not in files:
        raise BadInput(f"{folder / MODEL_JSON}: lists no {WEIGHTS}")
    for name, want in files.items():
        p = folder / str(name)
        if not p.is_file():
            raise BadInput(f"{p}: missing (listed in {MODEL_JSON}); the model cannot be used")
        try:
            got = sha256_file(p)
        except OSError as e:
            raise BadInput(f"{p}: cannot read ({e.strerror or e})") from None
        if want and got != want:
            raise BadInput(f"{p}: corrupted (checksum does not match {MODEL_JSON})")


def run(args: argparse.Namespace, reporter: Any) -> int:
    from pathlib import Path

    from facedub.model.checkpoint import WEIGHTS, read_meta

    meta = read_meta(args.model)
    check_files(Path(args.model), meta)
    w = Path(args.model) / WEIGHTS
    d = describe(meta, w.stat().st_size if w.is_file() else None)
    if args.json:
        print(json.dumps(d))
        return 0
    f = lambda v, n=4: "-" if v is None else f"{v:.{n}f}"  # noqa: E731
    t = d["train"] or {}
    consent = d["consent"] or {}
    lines = [
        f"model:      {args.model}",
        f"arch:       {d['arch']} — {d['summary'] or ''}",
        f"input:      {d['size']} px, coverage {d['coverage']}",
        f"trained:    {d['step']} steps, {d['examples'] or 0} examples, {d['hours'] * 60:.1f} min"
        + (f" (batch {t.get('batch_size')}, lr {t.get('lr')}, {t.get('precision')}, {t.get('device')} x{t.get('world_size')})" if t else ""),
        f"train loss: source {f(d['loss_source'])}, target {f(d['loss_target'])}",
        f"validation: source {f(d['val_source'])}, target {f(d['val_target'])} at step {d['val_step']}; "
        f"SSIM source {f(d['val_ssim_source'], 3)}, target {f(d['val_ssim_target'], 3)}",
    ]
    if d["val_best"]:
        b = d["val_best"]
        lines.append(f"best val:   step {b['step']}: source {f(b['source'])}, target {f(b['target'])}")
    if d["plateaued"]:
        lines.append("note:       validation loss had plateaued")
    for side in ("source", "target"):
        s = d[f"{side}_faceset"]
        rec = consent.get(side)
        who = f"{rec.get('id')} ({rec.get('subject')}{', synthetic' if rec.get('synthetic') else ''}, expires {rec.get('expires') or 'never'})" if isinstance(rec, dict) else "none"
        lines.append(f"{side}:     {s['id']} ({s['faces']} faces) {s['path'] or ''}; consent {who}")
    lines.append(f"weights:    {d['weights_mb']} MB; created {d['created']}, updated {d['updated']}")
    print("\n".join(lines))
    return 0
