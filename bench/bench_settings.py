"""Convert settings compared on one trained snapshot: the eval metrics of each, both directions.

    python bench/bench_settings.py                                  # lite snap-60 of bench_quality
    python bench/bench_settings.py --snap 30 --settings "forehead=0" "forehead=0.2,sharpen=0.7"

Needs the work folder of ``bench/bench_quality.py`` (its facesets, cut clips and snapshots:
run that first). Each setting is a comma-separated list of ``ConvertConfig`` fields
(``name=value``; numbers are read as numbers, ``none`` as None); the empty string is the
defaults. For each one, both directions of the shared pair are converted and evaluated exactly
as ``bench_quality`` does, and the "settings" section of BENCHMARKS.md gets one row per setting
and direction. Outputs and results are kept beside the snapshot's (``outputs/snap-N.<setting>_*``,
``settings.json``), so a rerun only does what is missing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, write_section  # noqa: E402
from bench.bench_quality import CLIPS, DIRECTIONS, NOT_RECORDED, SYN, _f, conversion_precisions, convert_and_eval, fmt_min, log, read_json, write_json  # noqa: E402

DEFAULT_SETTINGS = ("forehead=0", "", "sharpen=0.7")


def parse_setting(text: str) -> dict[str, Any]:
    """``"forehead=0.2,sharpen=1"`` → ``{"forehead": 0.2, "sharpen": 1}`` (validated by ConvertConfig)."""
    from facedub.convert import ConvertConfig

    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        if not eq or not name:
            raise SystemExit(f"setting {part!r}: expected name=value")
        v: Any = value
        if value.lower() == "none":
            v = None
        elif re.fullmatch(r"-?\d+", value):
            v = int(value)
        elif re.fullmatch(r"-?\d*\.\d+|-?\d+\.\d*", value):
            v = float(value)
        out[name.strip()] = v
    try:
        ConvertConfig(**out)
    except TypeError as e:
        raise SystemExit(f"setting {text!r}: {e}") from None
    return out


def tag_of(settings: dict[str, Any]) -> str:
    return "." + "_".join(f"{k}-{v}" for k, v in sorted(settings.items())) if settings else ".defaults"


def render(results: dict[str, Any], order: list[str], snap: Path) -> str:
    lines = [
        f"Snapshot: `{snap.relative_to(REPO) if REPO in snap.parents else snap}` (from `bench/bench_quality.py`). "
        "Every row converts and evaluates the same 300 frames as the quality section; only the convert setting differs.",
        "",
        "| setting | direction | reads as source | dist. to source | dist. to target | expression error | landmark jitter ratio | background PSNR, dB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for text in order:
        entry = results.get(text) or {}
        for dkey, face, into, _dec in DIRECTIONS:
            e = (entry.get(dkey) or {}).get("eval")
            if not e:
                continue
            lines.append(
                f"| `{text or 'defaults'}` | {face} → {into} | {_f(e['source_share'] * 100 if e['source_share'] is not None else None, '.0f', ' %')} | "
                f"{_f(e['dist_source_mean'], '.3f')} | {_f(e['dist_target_mean'], '.3f')} | {_f(e['expression_error_mean'], '.3f')} | "
                f"{_f(e['landmark_jitter_ratio'], '.2f')} | {_f(e['background_psnr_mean'], '.1f')} |"
            )
    from facedub.convert import ConvertConfig

    keys = sorted({k for text in order for k in parse_setting(text)})
    if "" in order and keys:
        d = ConvertConfig()
        ran = conversion_precisions({"": results.get("") or {}}) - {NOT_RECORDED}

        def shown(k: str) -> str:
            v = getattr(d, k)
            return f"{k} = {v} (ran as {', '.join(sorted(ran))})" if k == "precision" and ran else f"{k} = {v}"

        lines += ["", "`defaults` is `ConvertConfig()`: " + ", ".join(shown(k) for k in keys) + "."]
    unrecorded = NOT_RECORDED in conversion_precisions(read_json(snap.parent / "results.json", {}))
    if unrecorded and any("precision" in parse_setting(text) for text in order):
        lines += [
            "",
            "The quality section's conversions were made before convert had a `precision` setting, with the model in fp32; "
            "the `precision=fp32` rows show what that changes.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=None, help="bench_quality's work folder (default runs/bench-quality)")
    ap.add_argument("--arch", default="lite")
    ap.add_argument("--snap", type=float, default=60.0, help="training minutes of the snapshot (default 60)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), help="settings to compare (default: %(default)s)")
    ap.add_argument("--no-write", action="store_true", help="do not write BENCHMARKS.md")
    args = ap.parse_args(argv)
    if not SYN.is_dir():
        print(f"{SYN}: shared synthetic media not found; nothing to do", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else REPO / "runs" / "bench-quality"
    snap = work / args.arch / f"snap-{fmt_min(args.snap)}"
    if not (snap / "model.json").exists():
        print(f"{snap}: no such snapshot; run bench/bench_quality.py first", file=sys.stderr)
        return 2
    parsed = {t: parse_setting(t) for t in args.settings}
    fsets = {name: {"folder": str(work / "facesets" / name)} for name in CLIPS}
    for name, f in fsets.items():
        if not (Path(f["folder"]) / "faceset.json").exists():
            print(f"{f['folder']}: no faceset; run bench/bench_quality.py first", file=sys.stderr)
            return 2
    rfile = work / args.arch / "settings.json"
    all_results = read_json(rfile, {})
    key = fmt_min(args.snap)
    for text, settings in parsed.items():
        log(f"setting {text or 'defaults'}")
        holder = {key: all_results.setdefault(key, {}).setdefault(text, {})}  # the same dict, filled in place
        convert_and_eval(work, args.arch, args.snap, snap, fsets, args.frames, args.every, holder, settings, tag_of(settings), lambda: write_json(rfile, all_results))
    body = render(all_results[key], list(parsed), snap)
    print(body)
    if not args.no_write:
        write_section("settings", f"Convert settings on the `{args.arch}` {key}-minute snapshot (settings)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
