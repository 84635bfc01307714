"""``facedub convert TARGET --model MODEL --out OUT.mp4``: swap the face in a video, an image or an image sequence."""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.cli._options import add, limit, values
from facedub.convert.config import ConvertConfig

# Convert's settings that swap takes too (whole-chain runs), in --help order.
PASTE_OPTIONS = ("mask", "erode", "feather", "forehead", "occlusion", "detail", "sharpen", "color", "blend", "smooth",
                 "max_distance", "cut_threshold", "batch", "workers", "threads", "crf", "preset", "precision", "device")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert",
        help="replace the target person's face in a video, image or image sequence using a trained model",
        description=(
            "Replace the target person's face in every frame of TARGET with the source identity the "
            "model was trained on. Other people are left alone; frames without the face are copied "
            "unchanged; the sound is copied as it is. Use --preview FRAME to check settings on one frame. "
            "Image sequences (VFX plates): give TARGET and --out as patterns such as 'plates/shot.%04d.exr' "
            "(or shot.####.exr); EXR, 16-bit PNG and TIFF, and 10/16-bit DPX keep their precision, and --matte-out/--face-out "
            "write the paste's alpha and the face layer beside the plate."
        ),
    )
    p.add_argument("target", metavar="TARGET", help="the video, single image, or image sequence pattern (plates/shot.%%04d.exr) whose face is replaced")
    p.add_argument("--model", required=True, metavar="MODEL", help="the model folder written by 'facedub train'")
    p.add_argument("--out", required=True, metavar="OUT", help="output: .mp4/.mov/.m4v for a video (.mov for --codec prores4444), .png/.jpg for an image (a .png for --preview), or a sequence pattern out/shot.%%04d.exr (.exr/.png/.tif/.dpx)")
    p.add_argument("--matte-out", metavar="PATTERN", default=None, help="image sequences: also write the paste's alpha, exactly as used, as this sequence (matte/shot.%%04d.png: 16-bit grey; .exr: float)")
    p.add_argument("--face-out", metavar="PATTERN", default=None, help="image sequences: also write the swapped face layer as this sequence (RGBA; .exr premultiplied in the plate's space, .png/.tif straight)")
    limit(p, p.add_argument("--preview", type=int, metavar="FRAME", default=None, help="write only a before/after PNG of this frame number (fast; for judging settings)"), lo=0)
    # Each option's name, help and default are defined once, in facedub.cli._options (swap takes the same ones).
    for name in ("frame_range", "max_frames", "fps", "plate_space", *PASTE_OPTIONS, "codec", "c2pa_frames", "reverse", "visible_label"):
        add(p, ConvertConfig, name)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=run)


class _WithoutImageNotes:
    """The reporter minus its "picture written" notes: the preview's result line names the PNG."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def image(self, path: str, caption: str = "") -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _frames(text: str | None, max_frames: int | None, sequence: bool, reporter: Any) -> tuple[int | None, tuple[int, int] | None]:
    """(--max-frames, --frames) as (first N frames, FIRST-LAST: a sequence's own numbers, a video's frame indices from 0)."""
    from facedub.errors import BadInput
    from facedub.media.sequence import parse_range

    if text is None:
        return max_frames, None
    if sequence:
        return max_frames, parse_range(text)
    if not text.strip().isdigit():  # a video: FIRST-LAST, frame indices from 0
        if max_frames is not None:
            raise BadInput(f"--frames {text} and --max-frames {max_frames}: give one")
        return None, parse_range(text)
    # A video: --frames N is the older spelling of --max-frames N (kept so scripts keep working).
    if int(text) < 1:
        raise BadInput(f"--frames {text}: must be at least 1")
    if max_frames is not None:
        raise BadInput(f"--frames {text} and --max-frames {max_frames}: give one (for a video both mean the first N frames)")
    reporter.note(f"--frames {text} on a video is read as --max-frames {text} (the first {text} frames), its new name")
    return int(text), None


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.convert import convert_preview, convert_video
    from facedub.errors import BadInput
    from facedub.convert.sequence_out import names_sequence
    from facedub.outputs import check_output
    from facedub.safety.provenance import MANIFEST_SUFFIX

    sequence_in, sequence_out = names_sequence(args.target), names_sequence(args.out)
    if args.preview is not None and (sequence_in or sequence_out):
        raise BadInput(f"{args.target if sequence_in else args.out}: --preview takes a video or an image; for a sequence convert one frame with --frames N")
    if not sequence_out:
        check_output(args.out, inputs=[args.target, args.model], derived=(MANIFEST_SUFFIX,), what="--out")
    settings = values(args, ConvertConfig)
    settings["max_frames"], settings["frame_range"] = _frames(settings.pop("frame_range"), settings["max_frames"], sequence_in, reporter)
    config = ConvertConfig(**settings)
    if args.preview is not None:
        res = convert_preview(args.target, args.model, args.preview, args.out, config, _WithoutImageNotes(reporter))
        if args.json:
            print(json.dumps({"output": res.output, "frame": res.frame, "face_found": res.face_found, "seconds": round(res.seconds, 3)}))
        else:
            found = "" if res.face_found else " (no target face in that frame)"
            print(f"preview of frame {res.frame} written to {res.output}{found}")
        return 0
    summary = convert_video(args.target, args.model, args.out, config, reporter, matte_out=args.matte_out, face_out=args.face_out)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(
            f"{summary.output}: {summary.frames} frames ({summary.swapped} swapped, {summary.no_face} without the face) "
            f"in {summary.seconds:.1f} s, {summary.frames_per_second:.1f} frames/s (model in {summary.precision})"
        )
    return 0
