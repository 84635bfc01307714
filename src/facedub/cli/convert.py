"""``facedub convert TARGET --model MODEL --out OUT.mp4``: swap the face in a video, an image or an image sequence."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from facedub.cli._options import limit
from facedub.convert.config import BLEND_MODES, COLOR_MODES, DETAIL_MODES, MASK_MODES, OCCLUSION_MODES, PRESETS, SMOOTH_MODES
from facedub.model.names import PRECISIONS


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert",
        help="replace the target person's face in a video, image or image sequence using a trained model",
        description=(
            "Replace the target person's face in every frame of TARGET with the source identity the "
            "model was trained on. Other people are left alone; frames without the face are copied "
            "unchanged; the sound is copied as it is. Use --preview FRAME to check settings on one frame. "
            "Image sequences (VFX plates): give TARGET and --out as patterns such as 'plates/shot.%04d.exr' "
            "(or shot.####.exr); EXR, 16-bit PNG and TIFF keep their precision, and --matte-out/--face-out "
            "write the paste's alpha and the face layer beside the plate."
        ),
    )
    p.add_argument("target", metavar="TARGET", help="the video, single image, or image sequence pattern (plates/shot.%%04d.exr) whose face is replaced")
    p.add_argument("--model", required=True, metavar="MODEL", help="the model folder written by 'facedub train'")
    p.add_argument("--out", required=True, metavar="OUT", help="output: .mp4/.mov/.m4v for a video, .png/.jpg for an image (a .png for --preview), or a sequence pattern out/shot.%%04d.exr (.exr/.png/.tif)")
    p.add_argument("--matte-out", metavar="PATTERN", default=None, help="image sequences: also write the paste's alpha, exactly as used, as this sequence (matte/shot.%%04d.png: 16-bit grey; .exr: float)")
    p.add_argument("--face-out", metavar="PATTERN", default=None, help="image sequences: also write the swapped face layer as this sequence (RGBA; .exr premultiplied in the plate's space, .png/.tif straight)")
    limit(p, p.add_argument("--preview", type=int, metavar="FRAME", default=None, help="write only a before/after PNG of this frame number (fast; for judging settings)"), lo=0)
    p.add_argument("--frames", metavar="N | FIRST-LAST", default=None, help=(
        "a video: convert only the first N frames (frame indices count from 0); an image sequence: convert "
        "frames FIRST-LAST (or one frame number) in the sequence's own numbering, e.g. 1001-1100. A range "
        "renders exactly as inside a whole-shot run (the frames before it warm the filters up), so a render "
        "farm can split a shot into chunks"))
    limit(p, p.add_argument("--fps", type=float, metavar="FPS", default=None, help="image sequences: the frame rate (default 24), for the smoothing's time scale and a video --out"), lo=0, hi=1000, lo_open=True)
    p.add_argument("--plate-space", metavar="SPACE", default=None, help="image sequences: the plates' OpenColorIO colour space in the built-in cg-config (default: 'Linear Rec.709 (sRGB)' for EXR, 'sRGB Encoded Rec.709 (sRGB)' for PNG/TIFF)")
    p.add_argument("--mask", choices=MASK_MODES, default=None, help="which mask pastes the face: the model's learned mask with the landmark outline (default), the outline only, the learned mask only, or the whole square")
    limit(p, p.add_argument("--erode", type=int, metavar="PX", default=None, help="shrink the mask by this many pixels (default: 1.5%% of the face size)"), lo=0, hi=1000)
    limit(p, p.add_argument("--feather", type=int, metavar="PX", default=None, help="soften the mask edge over this many pixels (default: 5%% of the face size)"), lo=0, hi=1000)
    limit(p, p.add_argument("--forehead", type=float, metavar="F", default=None, help="how far the outline reaches above the brows, as a share of the chin-to-brow distance (default 0.1; 0 stops at the brows)"), lo=0, hi=1)
    p.add_argument("--occlusion", choices=OCCLUSION_MODES, default=None, help="keep what is in front of the face (a hand, a microphone, glasses) in front: auto finds the visible face with a small segmentation model (check the mask panel of --preview: faces unlike its training set may be partly marked hidden), off pastes through the mask alone (default)")
    p.add_argument("--detail", choices=DETAIL_MODES, default=None, help="use the model's detail stage (trained by 'facedub detail') for a sharper, larger face: auto (default, when the model has one) or off")
    limit(p, p.add_argument("--sharpen", type=float, metavar="A", default=None, help="sharpen the model's output before it is scaled up into the frame, 0 (off, default) to 3; 0.5–1 helps soft low-resolution models"), lo=0, hi=3)
    p.add_argument("--color", choices=COLOR_MODES, default=None, help="match the new face's colours to the frame: mean and spread in Lab (reinhard, default), histograms (hist), or not at all (none)")
    p.add_argument("--blend", choices=BLEND_MODES, default=None, help="how the face is pasted: soft-edged mix (alpha, default) or gradient-domain seamless clone (poisson)")
    p.add_argument("--smooth", choices=SMOOTH_MODES, default=None, help="steady the face position between frames (one-euro, default) or not (none)")
    limit(p, p.add_argument("--max-distance", type=float, metavar="D", default=None, help="how unlike the target person a face may look and still be swapped (face-descriptor distance; default 0.4). Raise it a little if the target is missed in hard poses; lower it if someone else is swapped"), lo=0, hi=2, lo_open=True)
    limit(p, p.add_argument("--cut-threshold", type=float, metavar="S", default=None, help="how different a frame must be from the one before to start a new shot, 0-1 (default 0.03): at a cut, tracking, smoothing and colour start afresh and faces are identified again; 0 turns cut detection off"), lo=0, hi=1)
    limit(p, p.add_argument("--batch", type=int, metavar="N", default=None, help="faces per model call (default 16)"), lo=1, hi=4096)
    limit(p, p.add_argument("--workers", type=int, metavar="N", default=None, help="model batches run side by side (default: 2 on a CPU with 2+ cores, 1 on a GPU)"), lo=1, hi=64)
    limit(p, p.add_argument("--threads", type=int, metavar="N", default=None, help="CPU threads of each model worker (default: the cores shared out among the workers)"), lo=1)
    limit(p, p.add_argument("--crf", type=int, metavar="Q", default=None, help="H.264 quality: lower is better and bigger (default 18)"), lo=0, hi=51)
    p.add_argument("--preset", choices=PRESETS, default=None, help="x264 speed preset, ultrafast … veryslow: faster presets make bigger files at the same quality (default veryfast)")
    p.add_argument("--precision", choices=PRECISIONS, default=None, help="the model's arithmetic: auto = bfloat16 where the CPU or GPU has fast units for it (about 1.4x faster on such a CPU; the faces differ from fp32 by at most a level or so), else fp32 (default auto; fp16 needs CUDA)")
    p.add_argument("--device", default=None, metavar="DEV", help="where the model runs: cpu, cuda, cuda:1 (default: CUDA when available)")
    p.add_argument("--reverse", action="store_true", default=None, help="swap the other way: put the model's target identity into footage of its source person")
    p.add_argument("--no-visible-label", action="store_true", help="leave out the visible 'AI-generated' corner label (film work); the invisible watermark, tags, manifest and Content Credentials always stay")
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


def _frames(text: str | None, sequence: bool) -> tuple[int | None, tuple[int, int] | None]:
    """--frames as (first N frames of a video, FIRST-LAST of a sequence)."""
    from facedub.errors import BadInput
    from facedub.media.sequence import parse_range

    if text is None:
        return None, None
    if sequence:
        return None, parse_range(text)
    if not text.strip().isdigit():
        raise BadInput(f"--frames {text}: for a video give N, the first N frames (FIRST-LAST ranges are for image sequences)")
    if int(text) < 1:
        raise BadInput(f"--frames {text}: must be at least 1")
    return int(text), None


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.convert import ConvertConfig, convert_preview, convert_video
    from facedub.errors import BadInput
    from facedub.convert.sequence_out import names_sequence
    from facedub.outputs import check_output
    from facedub.safety.provenance import MANIFEST_SUFFIX

    sequence_in, sequence_out = names_sequence(args.target), names_sequence(args.out)
    if args.preview is not None and (sequence_in or sequence_out):
        raise BadInput(f"{args.target if sequence_in else args.out}: --preview takes a video or an image; for a sequence convert one frame with --frames N")
    if not sequence_out:
        check_output(args.out, inputs=[args.target, args.model], derived=(MANIFEST_SUFFIX,), what="--out")
    max_frames, frame_range = _frames(args.frames, sequence_in)
    config = ConvertConfig().with_(
        mask=args.mask,
        erode=args.erode,
        feather=args.feather,
        forehead=args.forehead,
        sharpen=args.sharpen,
        occlusion=args.occlusion,
        detail=args.detail,
        color=args.color,
        blend=args.blend,
        smooth=args.smooth,
        max_distance=args.max_distance,
        cut_threshold=None if args.cut_threshold == 0 else args.cut_threshold,
        batch=args.batch,
        crf=args.crf,
        preset=args.preset,
        workers=args.workers,
        threads=args.threads,
        device=args.device,
        precision=args.precision,
        max_frames=max_frames,
        frame_range=frame_range,
        fps=args.fps,
        plate_space=args.plate_space,
        reverse=args.reverse,
        visible_label=False if args.no_visible_label else None,
    )
    if args.cut_threshold == 0:
        config = dataclasses.replace(config, cut_threshold=None)
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
