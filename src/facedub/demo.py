"""``python -m facedub.demo``: facedub's main job on the sample media.

For now: extract a faceset of the synthetic identity aiface1 from
``../shared/data/synthetic/aiface1/speech_512.mp4`` into ``./runs/demo-faceset``, print its
summary and statistics, and write a contact sheet to look at. Running it again resumes /
skips the finished work.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

DEMO_CLIP = Path("synthetic") / "aiface1" / "speech_512.mp4"


def find_shared_data() -> Path | None:
    """../shared/data: from $FACEDUB_SHARED_DATA, the working folder, or this checkout."""
    candidates = []
    if os.environ.get("FACEDUB_SHARED_DATA"):
        candidates.append(Path(os.environ["FACEDUB_SHARED_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")  # <repo>/../shared/data
    for c in candidates:
        if (c / DEMO_CLIP).is_file():
            return c
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facedub.demo", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--out", default="runs/demo-faceset", metavar="FOLDER", help="where to write the faceset (default runs/demo-faceset)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="look at every Nth frame only (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    data = find_shared_data()
    if data is None:
        print(
            "facedub demo: the sample media is missing: expected ../shared/data/synthetic/aiface1/speech_512.mp4 "
            "beside this project (or set FACEDUB_SHARED_DATA to the data folder).",
            file=sys.stderr,
        )
        return 2

    from facedub.cli._reporter import ConsoleReporter
    from facedub.errors import FacedubError
    from facedub.extract import ExtractConfig, extract_faceset
    from facedub.faceset.show import contact_sheet, faceset_stats
    from facedub.faceset.store import load_faceset

    reporter = ConsoleReporter(quiet=args.quiet)
    out = Path(args.out)
    try:
        summary = extract_faceset([data / DEMO_CLIP], out, ExtractConfig(every=args.every), reporter)
        reporter.close()
        print("\n".join(summary.lines()))
        fs = load_faceset(out)
        print("\n".join(faceset_stats(fs).lines()))
        sheet = contact_sheet(fs, out, out / "contact_sheet.png")
    except FacedubError as e:
        reporter.close()
        print(f"facedub demo: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        reporter.close()
        print("facedub demo: interrupted (run it again to resume)", file=sys.stderr)
        return 130
    print(f"contact sheet: {sheet.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
