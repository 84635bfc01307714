"""Ranges of numeric options, checked once for every command before any work starts.

``limit(parser, action, lo=..., hi=...)`` records the allowed range of an option the
parser just defined; :func:`check_limits` (called by :func:`facedub.cli.main` right after
parsing) raises BadInput — one line, exit 2 — naming the option, the value and the range.
Types are argparse's job; ranges are checked here so every command reports them the same way.

The second half defines every option that sets a config field once (:func:`add`); see there.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from facedub.errors import BadInput

_KEY = "_limits"


def limit(parser: argparse.ArgumentParser, action: argparse.Action, lo: float | None = None, hi: float | None = None,
          lo_open: bool = False, multiple: int | None = None) -> argparse.Action:
    """Record that ``action``'s value (when given) must lie in [lo, hi] (lo excluded if ``lo_open``)."""
    name = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
    limits = dict(parser.get_default(_KEY) or {})
    limits[action.dest] = (str(name), lo, hi, lo_open, multiple)
    parser.set_defaults(**{_KEY: limits})
    return action


def _fmt(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def check_limits(args: argparse.Namespace) -> None:
    for dest, (name, lo, hi, lo_open, multiple) in (getattr(args, _KEY, None) or {}).items():
        v: Any = getattr(args, dest, None)
        if v is None or isinstance(v, bool):
            continue
        if isinstance(v, float) and not math.isfinite(v):
            raise BadInput(f"{name} {v}: must be a finite number")
        if lo is not None:
            if lo_open and v <= lo:
                raise BadInput(f"{name} {_fmt(v)}: must be more than {_fmt(lo)}")
            if not lo_open and v < lo:
                raise BadInput(f"{name} {_fmt(v)}: must be at least {_fmt(lo)}")
        if hi is not None and v > hi:
            raise BadInput(f"{name} {_fmt(v)}: must be at most {_fmt(hi)}")
        if multiple and v % multiple:
            raise BadInput(f"{name} {_fmt(v)}: must be a multiple of {multiple}")


# ---------------------------------------------------------------------------------------------
# One definition per option.
#
# Every option that sets a field of a stage's config dataclass is defined once below: its name,
# type, choices, range and help. Its default is read from the dataclass field
# (:func:`field_default`), never written into argparse, so the command line, the library, the
# job files of ``facedub batch`` and the web UI start from the same value. Commands that take
# the same setting (convert and swap take convert's paste settings; extract, eval, convert and
# swap take ``--max-frames``) add the same definition with :func:`add`.
#
# Two ideas, two names: ``--max-frames N`` is a count (the first N frames of each input, or for
# extract the first N frames it looks at), ``--frames FIRST-LAST`` is a range of an image
# sequence in its own numbering, or of a video by frame index from 0 (convert only). verify's
# count of frames to examine is --max-frames too (cli/verify.py; --frames there is a hidden old name).
#
# Old spellings stay accepted as hidden aliases (not in --help; a note on stderr names the new
# one), so existing scripts keep working.
# ---------------------------------------------------------------------------------------------

_FIELDS = "_fields"


class _Missing:
    def __repr__(self) -> str:
        return "FIELD"


FIELD: Any = _Missing()  # add(..., default=FIELD): the dataclass field's default (the only way)


def field_default(config: type, name: str) -> Any:
    """The default of dataclass ``config``'s field ``name`` (its default_factory called)."""
    for f in dataclasses.fields(config):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{config.__name__}.{name} has no default")
    raise KeyError(f"{config.__name__} has no field {name!r}")


@dataclass(frozen=True)
class Option:
    """One command-line option: which config fields it sets and how it reads."""

    flag: str  # the name --help shows
    configs: tuple[str, ...]  # "module:Class" of every config dataclass whose ``field`` it sets (same meaning in each)
    field: str  # the field (also the argparse dest)
    help: str  # may use %(default)s
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None  # "store_true" / "store_false" for switches
    aliases: tuple[str, ...] = ()  # old spellings: still accepted, hidden from --help
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    multiple: int | None = None
    to_field: Callable[[Any], Any] | None = None  # the parsed value → the field's value (e.g. 0 → None)


def config_class(path: str) -> type:
    """The dataclass named "module:Class"."""
    import importlib

    mod, name = path.split(":")
    return getattr(importlib.import_module(mod), name)


_CONVERT = "facedub.convert.config:ConvertConfig"
_SWAP = "facedub.swap:SwapConfig"
_EXTRACT = "facedub.extract.config:ExtractConfig"
_EVAL = "facedub.evaluate.core:EvalConfig"
_TRAIN = "facedub.train.config:TrainConfig"
_AUGMENT = "facedub.train.config:AugmentConfig"
_DETAIL = "facedub.convert.detail:DetailConfig"


def _definitions() -> list[Option]:
    from facedub.convert import config as cc
    from facedub.model.names import ARCH_NAMES, DEFAULT_ARCH, PRECISIONS
    from facedub.swap import SWAP_ARCHS
    from facedub.train.config import DEFAULT_MINUTES

    o = Option
    return [
        # --- how many frames ------------------------------------------------------------------
        o("--max-frames", (_CONVERT, _SWAP, _EXTRACT, _EVAL), "max_frames", type=int, metavar="N", lo=1,
          help="use only the first N frames of each video (a quick look); extract and swap's extraction count the frames looked at (see --every)"),
        o("--frames", (_CONVERT,), "frame_range", metavar="FIRST-LAST", help=(
            "convert frames FIRST-LAST (inclusive): of an image sequence in its own numbering (e.g. 1001-1100, or one "
            "frame number), of a video by frame index from 0 (e.g. 0-99). A range renders exactly as inside a whole-shot "
            "run (the frames before it warm the filters up), so a render farm can split a shot into chunks: into a "
            "sequence --out (a video's frames numbered by index) the chunks' files are bit-identical to one run's. "
            "A range into a video --out is a trimmed render from time 0 with the sound of its frames; video chunks are not meant to be "
            "joined bit-exactly (each is encoded on its own): use a sequence --out for farm chunks. (For a video, "
            "--frames N alone is still read as the older spelling of --max-frames N)")),
        o("--every", (_EXTRACT, _SWAP), "every", type=int, metavar="N", lo=1,
          help="look at every Nth video frame only for training faces (default %(default)s = every frame); neighbouring frames are near-duplicates"),
        # --- convert: the paste ---------------------------------------------------------------
        o("--mask", (_CONVERT,), "mask", choices=cc.MASK_MODES,
          help="which mask pastes the face: the model's learned mask with the landmark outline (learned-hull), the outline only, the learned mask only, or the whole square (default %(default)s)"),
        o("--erode", (_CONVERT,), "erode", type=int, metavar="PX", lo=0, hi=1000,
          help="shrink the mask by this many pixels (default: 1.5%% of the face size)"),
        o("--feather", (_CONVERT,), "feather", type=int, metavar="PX", lo=0, hi=1000,
          help="soften the mask edge over this many pixels (default: 5%% of the face size)"),
        o("--forehead", (_CONVERT,), "forehead", type=float, metavar="F", lo=0, hi=1,
          help="how far the outline reaches above the brows, as a share of the chin-to-brow distance (default %(default)s; 0 stops at the brows)"),
        o("--occlusion", (_CONVERT,), "occlusion", choices=cc.OCCLUSION_MODES,
          help="keep what is in front of the face (a hand, a microphone, glasses) in front: auto finds the visible face with a small segmentation model (check the mask panel of convert --preview: faces unlike its training set may be partly marked hidden), off pastes through the mask alone (default %(default)s)"),
        o("--detail", (_CONVERT,), "detail", choices=cc.DETAIL_MODES,
          help="use the model's detail stage (trained by 'facedub detail') for a sharper, larger face: auto (when the model has one) or off (default %(default)s)"),
        o("--sharpen", (_CONVERT,), "sharpen", type=float, metavar="A", lo=0, hi=3,
          help="sharpen the model's output before it is scaled up into the frame, 0 (off) to 3 (default %(default)s); 0.5–1 helps soft low-resolution models"),
        o("--color", (_CONVERT,), "color", choices=cc.COLOR_MODES,
          help="match the new face's colours to the frame: mean and spread in Lab (reinhard), histograms (hist), or not at all (none) (default %(default)s)"),
        o("--blend", (_CONVERT,), "blend", choices=cc.BLEND_MODES,
          help="how the face is pasted: soft-edged mix (alpha) or gradient-domain seamless clone (poisson) (default %(default)s)"),
        o("--smooth", (_CONVERT,), "smooth", choices=cc.SMOOTH_MODES,
          help="steady the face position between frames (one-euro) or not (none) (default %(default)s)"),
        o("--max-distance", (_CONVERT,), "max_distance", type=float, metavar="D", lo=0, hi=2, lo_open=True,
          help="how unlike the target person a face may look and still be swapped (face-descriptor distance; default %(default)s). Raise it a little if the target is missed in hard poses; lower it if someone else is swapped"),
        o("--cut-threshold", (_CONVERT,), "cut_threshold", type=float, metavar="S", lo=0, hi=1, to_field=lambda v: None if v == 0 else v,
          help="how different a frame must be from the one before to start a new shot, 0-1 (default %(default)s): at a cut, tracking, smoothing and colour start afresh and faces are identified again; 0 turns cut detection off"),
        o("--no-visible-label", (_CONVERT, _SWAP), "visible_label", action="store_false",
          help="leave out the visible 'AI-generated' corner label (film work); the invisible watermark, tags, manifest and Content Credentials always stay"),
        o("--reverse", (_CONVERT,), "reverse", action="store_true",
          help="swap the other way: put the model's target identity into footage of its source person"),
        # --- convert: speed and encoding ------------------------------------------------------
        o("--batch", (_CONVERT,), "batch", type=int, metavar="N", lo=1, hi=4096, help="faces per model call (default %(default)s)"),
        o("--workers", (_CONVERT,), "workers", type=int, metavar="N", lo=1, hi=64,
          help="model batches run side by side (default: 2 on a CPU with 2+ cores, 1 on a GPU)"),
        o("--threads", (_CONVERT,), "threads", type=int, metavar="N", lo=1,
          help="CPU threads of each model worker (default: the cores shared out among the workers)"),
        o("--crf", (_CONVERT,), "crf", type=int, metavar="Q", lo=0, hi=51, help="H.264 quality: lower is better and bigger (default %(default)s)"),
        o("--preset", (_CONVERT,), "preset", choices=cc.PRESETS,
          help="x264 speed preset, ultrafast … veryslow: faster presets make bigger files at the same quality (default %(default)s)"),
        o("--codec", (_CONVERT,), "codec", choices=cc.CODECS,
          help="a video --out's codec: h264 (8-bit, .mp4/.mov), prores4444 (10-bit 4:4:4 .mov master) or ffv1 (lossless RGB .mkv, 16-bit from plates; no C2PA binding: verify checks the manifest's sha256); from 16-bit or float plates without an 8-bit step (default %(default)s)"),
        o("--c2pa-frames", (_CONVERT,), "c2pa_frames", action="store_true",
          help="image sequences: also sign every PNG/TIFF frame with C2PA Content Credentials (about 0.1-0.2 s a 1080p frame; a signature is never the same twice, so chunks of a shot are then no longer bit-identical to one run; EXR and DPX have no C2PA binding)"),
        o("--precision", (_CONVERT, _TRAIN), "precision", choices=PRECISIONS,
          help="the model's arithmetic: auto = bfloat16 where the CPU or GPU has fast units for it (faster; results within about a level of fp32), else fp32 (default %(default)s; fp16 needs CUDA)"),
        o("--device", (_CONVERT, _TRAIN), "device", metavar="DEV", help="where the model runs: cpu, cuda, cuda:1 (default: CUDA when available)"),
        # --- convert: image sequences ---------------------------------------------------------
        o("--fps", (_CONVERT,), "fps", type=float, metavar="FPS", lo=0, hi=1000, lo_open=True,
          help="image sequences: the frame rate (default %(default)s), for the smoothing's time scale and a video --out"),
        o("--plate-space", (_CONVERT,), "plate_space", metavar="SPACE",
          help="image sequences: the plates' OpenColorIO colour space in the built-in cg-config (default: 'Linear Rec.709 (sRGB)' for EXR, 'sRGB Encoded Rec.709 (sRGB)' for PNG/TIFF/DPX; a log DPX needs its own)"),
        # --- swap -----------------------------------------------------------------------------
        o("--minutes", (_SWAP,), "minutes", type=float, metavar="M", lo=0, lo_open=True,
          help="total training time of the project in minutes (default %(default)s; a rerun only spends what is left)"),
        o("--steps", (_SWAP,), "steps", type=int, metavar="N", lo=1, help="train for N steps in total instead of a time budget"),
        o("--no-eval", (_SWAP,), "evaluate", action="store_false", help="skip the quality evaluation at the end"),
        o("--arch", (_SWAP,), "arch", choices=SWAP_ARCHS, help="model: auto picks 'hd' with a CUDA GPU and 'lite' on a CPU (default %(default)s)"),
        # --- extract --------------------------------------------------------------------------
        o("--min-size", (_EXTRACT,), "min_size", type=int, metavar="PX", lo=0,
          help="leave out faces smaller than this many pixels across in the video (default %(default)s)"),
        o("--blur-threshold", (_EXTRACT,), "blur_threshold", type=float, metavar="X", lo=0, help=(
            "leave out faces whose sharpness score (variance of the Laplacian of the crop, as faceset.json records it) "
            "is below X (0 keeps all). Default: relative — only faces far less sharp than the rest of the faceset "
            "go, so low-resolution footage keeps its good faces")),
        o("--match-distance", (_EXTRACT,), "match_distance", type=float, metavar="D", lo=0, lo_open=True, hi=2,
          help="how alike two faces must be to count as one person: identity-descriptor distance below D (default %(default)s; lower is stricter)"),
        # --- eval -----------------------------------------------------------------------------
        o("--every", (_EVAL,), "every", type=int, metavar="N", lo=1,
          help="compute identity descriptors on every Nth frame (default %(default)s; each costs about 0.15 s per face)"),
        # --- train ----------------------------------------------------------------------------
        o("--arch", (_TRAIN,), "arch", choices=ARCH_NAMES, help=(
            f"model architecture: 'lite' for CPUs (default for new models: {DEFAULT_ARCH}), 'original' the 2018 model, "
            "'hd' 128 px with a learned mask for GPUs, 'saehd' 256 px in the class of DeepFaceLab's SAEHD for CUDA GPUs; "
            "'facedub model show' describes them")),
        o("--steps", (_TRAIN,), "steps", type=int, metavar="N", lo=1, help="train N steps now (added to the model's steps when resuming)"),
        o("--minutes", (_TRAIN,), "minutes", type=float, metavar="M", lo=0, lo_open=True,
          help=f"train for M minutes of wall time (default {DEFAULT_MINUTES:g} when --steps is not given)"),
        o("--batch-size", (_TRAIN,), "batch_size", type=int, metavar="B", lo=1, help="faces of each person per step (default: the architecture's; lower it if memory runs out)"),
        o("--lr", (_TRAIN,), "lr", type=float, metavar="X", lo=0, lo_open=True, hi=1, help="learning rate (default: the architecture's)"),
        o("--seed", (_TRAIN, _DETAIL), "seed", type=int, metavar="S", lo=0, hi=2**32 - 1, help="random seed for weights, data order and augmentation (default %(default)s)"),
        o("--preview-every", (_TRAIN,), "preview_every", type=int, metavar="N", lo=0,
          help="write a preview grid, validation loss and loss curve every N steps (default %(default)s; 0 = only at the end)"),
        o("--save-every", (_TRAIN,), "save_every", type=int, metavar="N", lo=1,
          help="save the model every N steps (default %(default)s); it is always saved at the end and on Ctrl-C"),
        o("--size", (_TRAIN,), "size", type=int, metavar="PX", lo=16, hi=1024, multiple=16, help="model input size in pixels, a multiple of 16 (default: the architecture's)"),
        o("--coverage", (_TRAIN,), "coverage", type=float, metavar="F", lo=0.3, hi=1.0, help="share of the aligned face crop the model sees, 0.3-1.0 (default 0.6875)"),
        o("--width", (_TRAIN,), "width", type=float, metavar="F", lo=0, lo_open=True, hi=8,
          help="channel multiplier of the architecture (default 1.0; smaller trains faster but learns less)"),
        o("--threads", (_TRAIN,), "threads", type=int, metavar="N", lo=1, help="CPU threads to use (default: all cores)"),
        o("--occlusion", (_TRAIN,), "occlusion", choices=cc.OCCLUSION_MODES, help=(
            "auto: what the occlusion model finds in front of a training face (a hand, a microphone, glasses) carries no loss, "
            "so the decoders do not learn to paint it (masks computed once per face and cached); off: every pixel counts "
            "(default %(default)s); the same name and choices as convert's --occlusion")),
        o("--color-match", (_AUGMENT,), "colour_match", type=float, metavar="P", lo=0, hi=1, aliases=("--colour-match",),
          help="training augmentation: share of faces given the other person's colour statistics (default %(default)s; 0 = off). Not convert's --color, which picks how the pasted face is matched"),
        o("--no-warp", (_AUGMENT,), "warp", action="store_false", help="turn off the random grid warp of the inputs"),
        o("--no-flip", (_AUGMENT,), "flip", action="store_false", help="turn off random horizontal flips"),
        o("--warp-off-share", (_AUGMENT,), "warp_off_share", type=float, metavar="F", lo=0, hi=1,
          help="train the last share F of this session (steps or minutes) without the random warp, DeepFaceLab's sharpening practice (default %(default)s = warp throughout)"),
        o("--ema", (_TRAIN,), "ema", type=float, metavar="D", lo=0, hi=1,
          help="keep a moving average of the weights with decay D and save that for convert (default %(default)s = off; e.g. 0.999)"),
        o("--lr-schedule", (_TRAIN,), "lr_schedule", choices=("constant", "cosine"),
          help="learning rate over this session: constant (default %(default)s) or cosine (warm-up, then decay to 10 %%)"),
        o("--warmup-steps", (_TRAIN,), "warmup_steps", type=int, metavar="N", lo=0, help="steps of linear learning-rate warm-up with --lr-schedule cosine (default %(default)s)"),
        o("--eye-mouth-weight", (_TRAIN,), "eye_mouth_weight", type=float, metavar="W", lo=0, hi=100,
          help="new models: extra loss weight on eye and mouth pixels (default: the architecture's; lite 2)"),
        o("--hf-weight", (_TRAIN,), "hf_weight", type=float, metavar="W", lo=0, hi=100,
          help="new models: weight of an L1 loss on the high-frequency band (image minus its blur), which pays for edges and texture (default: the architecture's, 0)"),
    ]


_DEFS: list[Option] | None = None


def definitions() -> list[Option]:
    global _DEFS
    if _DEFS is None:
        _DEFS = _definitions()
    return _DEFS


def option(config: type, name: str) -> Option:
    """The definition that sets field ``name`` of ``config``."""
    key = f"{config.__module__}:{config.__qualname__}"
    for opt in definitions():
        if opt.field == name and key in opt.configs:
            return opt
    raise KeyError(f"no option is defined for {key}.{name}")


class _OldSpelling(argparse.Action):
    """An old name of an option: stores like the new one and says which name to use."""

    def __init__(self, option_strings: Any, dest: str, new: str = "", inner: Any = "store", **kw: Any) -> None:
        self.new, self.inner = new, inner
        if inner in ("store_true", "store_false"):
            kw["nargs"] = 0
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        import sys

        print(f"facedub: note: {option_string} is an old name; use {self.new}", file=sys.stderr)
        if self.inner == "store_true":
            values = True
        elif self.inner == "store_false":
            values = False
        setattr(namespace, self.dest, values)


def add(parser: argparse.ArgumentParser, config: type, name: str, *, container: Any = None, dest: str | None = None) -> argparse.Action:
    """Add the option that sets ``config.name`` to ``parser`` (or to ``container``, a group of it),
    its default read from the dataclass; returns the action. ``dest`` renames the attribute (when a
    command takes the same field of two configs)."""
    opt = option(config, name)
    where = container if container is not None else parser
    default = field_default(config, name)
    dest = dest or opt.field
    kw: dict[str, Any] = {"dest": dest, "default": default, "help": opt.help}
    if opt.action:
        kw["action"] = opt.action
    else:
        kw.update(type=opt.type, metavar=opt.metavar, choices=opt.choices)
        kw = {k: v for k, v in kw.items() if v is not None or k == "default"}
    action = where.add_argument(opt.flag, **kw)
    for old in opt.aliases:
        where.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, action=_OldSpelling,
                           new=opt.flag, inner=opt.action or "store", **({} if opt.action else {"type": opt.type, "metavar": opt.metavar}))
    fields_ = dict(parser.get_default(_FIELDS) or {})
    fields_[dest] = (f"{config.__module__}:{config.__qualname__}", name, opt.flag)
    parser.set_defaults(**{_FIELDS: fields_})
    if opt.lo is not None or opt.hi is not None or opt.multiple:
        limit(parser, action, lo=opt.lo, hi=opt.hi, lo_open=opt.lo_open, multiple=opt.multiple)
    return action


def add_alias(parser: argparse.ArgumentParser, old: str, action: argparse.Action) -> None:
    """Accept ``old`` (hidden from --help) as an earlier spelling of ``action``'s option."""
    parser.add_argument(old, dest=action.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, action=_OldSpelling,
                        new=action.option_strings[0], type=action.type, metavar=action.metavar)


def values(args: argparse.Namespace, config: type) -> dict[str, Any]:
    """``{field: value}`` of every option of ``config`` the command defined, as the config wants them."""
    key = f"{config.__module__}:{config.__qualname__}"
    out: dict[str, Any] = {}
    for dest, (cfg, name, _flag) in (getattr(args, _FIELDS, None) or {}).items():
        if cfg != key or not hasattr(args, dest):
            continue
        v = getattr(args, dest)
        conv = option(config, name).to_field
        out[name] = conv(v) if conv else v
    return out
