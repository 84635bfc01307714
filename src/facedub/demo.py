"""``python -m facedub.demo``: facedub's main job on the sample media.

Puts the face of the synthetic identity aiface2 into aiface1's talking-head video with
``facedub swap`` (extract both, train, convert, verify, evaluate) in the project folder
``runs/demo``, then writes a before/after strip and the source faceset's contact sheet to
look at. Both identities are AI-generated and belong to no real person, so the demo records
synthetic consent for them. Running it again resumes and skips finished work.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

SOURCE_CLIP = Path("synthetic") / "aiface2" / "intro_512.mp4"
TARGET_CLIP = Path("synthetic") / "aiface1" / "speech_512.mp4"


def find_shared_data() -> Path | None:
    """../shared/data: from $FACEDUB_SHARED_DATA, the working folder, or this checkout."""
    candidates = []
    if os.environ.get("FACEDUB_SHARED_DATA"):
        candidates.append(Path(os.environ["FACEDUB_SHARED_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")  # <repo>/../shared/data
    for c in candidates:
        if (c / SOURCE_CLIP).is_file() and (c / TARGET_CLIP).is_file():
            return c
    return None


def before_after_strip(target: Path, output: Path, dest: Path, count: int = 4, side: int = 256) -> Path:
    """A PNG with ``count`` evenly spaced frames: target on the top row, output below."""
    import numpy as np
    from PIL import Image

    from facedub.fileio import write_png
    from facedub.media.reader import open_media

    def pick(path: Path) -> list[np.ndarray]:
        reader = open_media(path)
        n = max(1, reader.frame_count)
        wanted = {int(i) for i in np.linspace(0, n - 1, count + 2)[1:-1]}
        frames = [f.rgb for f in reader.frames() if f.index in wanted]
        return [np.asarray(Image.fromarray(f).resize((side, side * f.shape[0] // f.shape[1]))) for f in frames]

    top, bottom = pick(target), pick(output)
    k = min(len(top), len(bottom))
    grid = np.concatenate([np.concatenate(top[:k], axis=1), np.concatenate(bottom[:k], axis=1)], axis=0)
    write_png(dest, grid)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facedub.demo", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--project", default="runs/demo", metavar="FOLDER", help="project folder (default runs/demo)")
    parser.add_argument("--minutes", type=float, default=15.0, metavar="M", help="training time budget in minutes (default 15; a rerun spends only what is left)")
    parser.add_argument("--arch", default="auto", help="model architecture (default auto: lite on a CPU, hd with CUDA)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    data = find_shared_data()
    if data is None:
        print(
            f"facedub demo: the sample media is missing: expected ../shared/data/{SOURCE_CLIP} and {TARGET_CLIP} "
            "beside this project (or set FACEDUB_SHARED_DATA to the data folder).",
            file=sys.stderr,
        )
        return 2

    from facedub.cli import main as cli_main
    from facedub.safety.consent import create_consent, save_consent

    project = Path(args.project)
    project.parent.mkdir(parents=True, exist_ok=True)
    consents = {}
    for role, name in (("source", "aiface2"), ("target", "aiface1")):
        path = project.parent / f"{project.name}-{role}-consent.json"
        if not path.is_file():
            rec = create_consent(
                name, "facedub demo", "facedub demo on the shared synthetic sample media", synthetic=True
            )
            save_consent(rec, path)
        consents[role] = str(path)
    out = project.parent / f"{project.name}-result.mp4"
    argv_swap = [
        *(["--quiet"] if args.quiet else []),
        "swap",
        "--source", str(data / SOURCE_CLIP),
        "--target", str(data / TARGET_CLIP),
        "--out", str(out),
        "--project", str(project),
        "--minutes", str(args.minutes),
        "--arch", args.arch,
        "--source-consent", consents["source"],
        "--target-consent", consents["target"],
    ]
    code = cli_main(argv_swap)
    if code != 0:
        return code

    from facedub.faceset.show import contact_sheet
    from facedub.faceset.store import load_faceset

    strip = before_after_strip(data / TARGET_CLIP, out, project / "output" / "before_after.png")
    src_fs = project / "facesets" / "source"
    sheet = contact_sheet(load_faceset(src_fs), src_fs, project / "output" / "source_contact_sheet.png")
    print(f"before (top) / after (bottom): {strip.resolve()}")
    print(f"source faces used for training: {Path(sheet).resolve()}")
    print(f"play the result: {out.resolve()}   check its marks: facedub verify {out}")
    # The verdict last, so it is what a reader sees under the strip's path: a blur cannot pass.
    for line in final_quality(project):
        print(line)
    return 0


def final_quality(project: Path) -> list[str]:
    """The swap's quality lines (verdict, figures, what to do next) from the project's swap.json."""
    import json

    from facedub.swap import STATE_JSON, quality_lines

    try:
        summary = json.loads((project / STATE_JSON).read_text(encoding="utf-8")).get("summary") or {}
    except (OSError, ValueError):
        return []
    if not summary.get("eval"):
        return []
    return quality_lines(summary["eval"], summary.get("verdict"))


if __name__ == "__main__":
    sys.exit(main())
