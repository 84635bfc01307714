"""``facedub swap --source SOURCE_VIDEO --target TARGET_VIDEO --out OUT.mp4``: the whole chain."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facedub.cli._options import add, add_alias, values
from facedub.cli.convert import PASTE_OPTIONS
from facedub.convert.config import ConvertConfig
from facedub.errors import BadInput
from facedub.swap import SwapConfig


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "swap",
        help="the whole chain in one command: extract both, train, convert, verify, evaluate",
        description=(
            "Put the SOURCE person's face into the TARGET video in one command. Everything is kept "
            "in a project folder (default: OUT's name + '.facedub' beside it), so running the same "
            "command again resumes where it stopped: faces already extracted are kept, training "
            "continues until the time budget is used, and the video is converted again only when the "
            "model changed. Both people need a consent record: pass them with --source-consent and "
            "--target-consent, or answer the questions when asked."
        ),
    )
    p.add_argument("--source", required=True, nargs="+", metavar="SOURCE", help="video(s), image(s) or image folder(s) of the person whose face goes in")
    p.add_argument("--target", required=True, metavar="TARGET", help="the video (or image) whose person's face is replaced")
    p.add_argument("--out", required=True, metavar="OUT", help="the result: an .mp4 for a video target, a .png/.jpg for an image")
    # Each option's name, help and default are defined once, in facedub.cli._options: the
    # training budget and extraction as SwapConfig fields, the paste as convert's own options.
    add(p, SwapConfig, "minutes")
    add(p, SwapConfig, "steps")
    add(p, SwapConfig, "arch")
    p.add_argument("--project", metavar="DIR", default=None, help="project folder keeping every intermediate result (default: OUT.facedub beside OUT)")
    p.add_argument("--source-consent", metavar="FILE", default=None, help="consent record of the source person (from 'facedub consent create')")
    p.add_argument("--target-consent", metavar="FILE", default=None, help="consent record of the target person")
    add(p, SwapConfig, "every")
    add_alias(p, "--frames", add(p, SwapConfig, "max_frames"))  # --frames N: the older name, a count (not convert's range)
    for name in PASTE_OPTIONS:
        add(p, ConvertConfig, name)
    add(p, SwapConfig, "visible_label")
    add(p, SwapConfig, "evaluate")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=run)


def _ask(question: str) -> str:
    print(question, end=" ", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):  # the terminal went away (EIO), or stdin was closed
        raise EOFError from None
    if not answer:
        raise EOFError
    return answer.strip()


def _stdin_is_terminal() -> bool:
    """True when there is a terminal to ask on (stdin may be closed: None, or a closed file)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


def ask_consent(role: str, dest: Path) -> str | None:
    """Ask on the terminal for a consent record; returns the file written, or None when declined.

    BadInput (one line, exit 2, nothing written) when the input ends or Ctrl-C is pressed
    before every question is answered."""
    from facedub.safety.consent import create_consent, save_consent

    who = "the SOURCE person (whose face goes in)" if role == "source" else "the TARGET person (whose face is replaced)"
    print(f"\nNo consent record for {who}. facedub needs one for each person.", file=sys.stderr)
    try:
        if _ask("Record it now? [y/N]").lower() not in ("y", "yes"):
            return None
        synthetic = _ask("Is this an AI-generated identity that belongs to no real person? [y/N]").lower() in ("y", "yes")
        subject = _ask("Name of the person (or of the synthetic identity):")
        granted_by = _ask("Consent granted by (the person, or their legal representative):")
        scope = _ask("What the consent covers (project, use):")
        expires = _ask("Expires on (YYYY-MM-DD, empty for none):") or None
        evidence = None if synthetic else (_ask("Path of the evidence (signed release, recording):") or None)
    except (EOFError, KeyboardInterrupt) as e:
        print(file=sys.stderr)  # end the unanswered question's line
        why = "the input ended" if isinstance(e, EOFError) else "they were interrupted (Ctrl-C)"
        raise BadInput(
            f"{dest}: not written: the consent questions for the {role} person were not answered ({why}); "
            f"answer them, or pass --{role}-consent FILE"
        ) from None
    record = create_consent(subject, granted_by, scope, expires=expires, evidence=evidence, synthetic=synthetic)
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_consent(record, dest)
    print(f"consent record {record.id} written to {dest}", file=sys.stderr)
    return str(dest)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.swap import default_project_dir, run_swap

    convert = ConvertConfig(**values(args, ConvertConfig))
    consents = {"source": args.source_consent, "target": args.target_consent}
    project = Path(args.project) if args.project else default_project_dir(args.out)
    if _stdin_is_terminal():  # no terminal (a pipe, /dev/null, closed): no questions, run_swap refuses without consent
        for role in ("source", "target"):
            if consents[role] is None and not (project / "consent" / f"{role}.json").is_file():
                consents[role] = ask_consent(role, project.parent / f"{project.name}-{role}-consent.json")
    config = SwapConfig(
        source=tuple(args.source),
        target=args.target,
        out=args.out,
        project=args.project,
        source_consent=consents["source"],
        target_consent=consents["target"],
        convert=convert,
        **values(args, SwapConfig),
    )
    summary = run_swap(config, reporter)
    reporter.finish()
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print("\n".join(summary.lines()))
    return 0
