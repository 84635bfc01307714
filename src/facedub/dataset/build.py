"""``facedub dataset``: a labelled deepfake-detection dataset from consented clips.

Layout (after FaceForensics++)::

    OUT/
      dataset.json                                      what was built, from which spec, counts
      original_sequences/facedub/c<CRF>/videos/<clip>.mp4            real clips (pristine mark)
      manipulated_sequences/<method>/c<CRF>/videos/<clip>_<source>.mp4   swapped clips
      manipulated_sequences/<method>/masks/<clip>_<source>/<frame>.png   paste alpha per frame
      labels/original/<clip>.json, labels/manipulated/<method>/<clip>_<source>.json
      splits/train.json, val.json, test.json             by identity

``<clip>`` is ``<target identity>-<file stem>``; ``<method>`` is ``facedub-<architecture>``;
every video has its provenance manifest (``.facedub.json``) beside it. Real and swapped clips
go through the same decoder, the same encoder settings (codec, CRF, preset, audio copy) and a
watermark of the same strength in every cell (the real clip's payload says "pristine"), and
neither has the visible label: none of those is a cue a detector could learn.

Work is split into :class:`Item` s, one per (pair, clip): :func:`build_item` is a plain
function of (plan, item, staging folder) that touches only that item's files, so a scheduler
(a Ray cluster, a render farm) can run items anywhere with shared storage; :func:`build_dataset`
runs them in turn. The build happens in ``.<OUT>.partial`` beside ``OUT``: a finished item
leaves ``state/<item>.json`` there, a re-run with the same spec resumes after the last
finished item, and the folder is renamed to ``OUT`` only when every item is done.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from facedub.dataset import masks as mask_mod
from facedub.dataset.spec import DatasetSpec, load_spec
from facedub.dataset.splits import SPLITS, assign_splits
from facedub.errors import BadInput
from facedub.fileio import write_json as _write_json
from facedub.progress import NullReporter, Reporter

LABEL_TYPE = "facedub.dataset.label"
DATASET_TYPE = "facedub.dataset"
VERSION = 1
REAL_METHOD = "facedub"  # original_sequences/<this>/ (FaceForensics++ has "youtube" there)


@dataclass(frozen=True)
class Item:
    """One unit of work: swap one clip of a pair's target (and, for the first pair that swaps
    the clip, write its real twin). Everything in it is plain data (picklable, JSON-able)."""

    key: str  # <clip id>_<source>: the swapped clip's name
    source: str
    target: str
    model: str  # model folder
    method: str  # facedub-<arch>
    clip: str  # the input video
    clip_id: str  # <target>-<stem>: the real clip's name
    writes_real: bool  # this item also writes the real clip
    split: str  # train / val / test (of both identities)
    source_consent: str
    target_consent: str


@dataclass(frozen=True)
class Plan:
    spec: DatasetSpec
    convert: dict[str, Any]  # ConvertConfig fields as used (visible label off, frames cap)
    items: tuple[Item, ...]
    splits: dict[str, str]  # identity → split
    fingerprint: str  # of everything that decides the output (resume only on a match)

    @property
    def crf_dir(self) -> str:
        return f"c{self.convert['crf']}"


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write, creating the folders on the way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, obj)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-") or "clip"


def _convert_config(plan: Plan) -> Any:
    from facedub.convert.config import ConvertConfig

    return ConvertConfig(**plan.convert)


def make_plan(spec: DatasetSpec) -> Plan:
    """Items, splits and settings for ``spec`` (reads each model's model.json; writes nothing)."""
    from facedub.convert.config import ConvertConfig
    from facedub.model.checkpoint import read_meta

    cfg = ConvertConfig(**{**spec.convert, "visible_label": False, "max_frames": spec.frames})
    conv = asdict(cfg)
    splits = assign_splits(sorted(spec.identities), [(p.source, p.target) for p in spec.pairs], spec.splits, spec.seed)
    items: list[Item] = []
    clip_ids: dict[str, str] = {}  # clip path → id
    for pair in spec.pairs:
        arch = str(read_meta(pair.model).get("arch", "unknown"))
        for clip in pair.clips:
            first = clip not in clip_ids
            if first:
                cid = f"{pair.target}-{_slug(Path(clip).stem)}"
                n = 2
                base = cid
                while cid in clip_ids.values():
                    cid, n = f"{base}-{n}", n + 1
                clip_ids[clip] = cid
            cid = clip_ids[clip]
            items.append(Item(
                key=f"{cid}_{pair.source}", source=pair.source, target=pair.target, model=pair.model,
                method=f"facedub-{_slug(arch)}", clip=clip, clip_id=cid, writes_real=first, split=splits[pair.target],
                source_consent=spec.identities[pair.source].consent_id, target_consent=spec.identities[pair.target].consent_id,
            ))
    fp = hashlib.sha256(json.dumps({
        "convert": conv, "splits": splits, "seed": spec.seed, "name": spec.name,
        "items": [asdict(i) for i in items],
        "inputs": {c: _file_stamp(c) for c in clip_ids},
        "models": {p.model: _file_stamp(str(Path(p.model) / "model.json")) for p in spec.pairs},
    }, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Plan(spec, conv, tuple(items), splits, fp)


def _file_stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


# ---------------------------------------------------------------------------------------
# Paths inside the dataset
# ---------------------------------------------------------------------------------------
def real_video(plan: Plan, item: Item) -> str:
    return f"original_sequences/{REAL_METHOD}/{plan.crf_dir}/videos/{item.clip_id}.mp4"


def swap_video(plan: Plan, item: Item) -> str:
    return f"manipulated_sequences/{item.method}/{plan.crf_dir}/videos/{item.key}.mp4"


def mask_folder(item: Item) -> str:
    return f"manipulated_sequences/{item.method}/masks/{item.key}"


def real_label(item: Item) -> str:
    return f"labels/original/{item.clip_id}.json"


def swap_label(item: Item) -> str:
    return f"labels/manipulated/{item.method}/{item.key}.json"


def state_file(item: Item) -> str:
    return f"state/{item.key}.json"


# ---------------------------------------------------------------------------------------
# Checks before any work
# ---------------------------------------------------------------------------------------
def check_inputs(plan: Plan, reporter: Reporter | None = None) -> None:
    """Every clip must be readable, and none may already carry a facedub swap's mark (a swap
    must never be labelled real)."""
    from facedub.media.reader import open_single
    from facedub.safety.verify import verify_file

    seen: set[str] = set()
    for item in plan.items:
        if item.clip in seen:
            continue
        seen.add(item.clip)
        r = open_single(Path(item.clip), "dataset")
        if r.kind != "video":
            raise BadInput(f"{item.clip}: a dataset clip must be a video, not a single image")
        w = verify_file(item.clip, max_frames=8).watermark
        if w.found and not w.pristine:
            raise BadInput(f"{item.clip}: carries a facedub swap's watermark (output id {w.output_id}); a swap cannot be a dataset's real clip")


# ---------------------------------------------------------------------------------------
# One item
# ---------------------------------------------------------------------------------------
def build_item(plan: Plan, item: Item, staging: str | os.PathLike[str], reporter: Reporter | None = None, *, detector: Any = None) -> dict[str, Any]:
    """Swap ``item``'s clip into ``staging`` (masks, video, label; the real clip too when the
    item writes it), then record the item finished. Touches only this item's files; safe to
    re-run after a crash (its files are rewritten). Returns the item's state record."""
    from facedub.convert.pipeline import PasteRecord, convert_video
    from facedub.model.checkpoint import read_meta
    from facedub.safety import watermark as wm

    reporter = reporter or NullReporter()
    root = Path(staging)
    cfg = _convert_config(plan)
    video = root / swap_video(plan, item)
    video.parent.mkdir(parents=True, exist_ok=True)
    final_masks = root / mask_folder(item)
    tmp_masks = final_masks.with_name(final_masks.name + ".partial")
    for old in (tmp_masks, final_masks):
        if old.exists():
            shutil.rmtree(old)
    tmp_masks.mkdir(parents=True)

    ious: list[float] = []  # per frame, mask ≥ MASK_LEVEL vs changed pixels
    ious_any: list[float] = []  # the same with every nonzero mask pixel
    marks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # frame → (landmarks, pasted cells) for the real twin
    mask_frames: list[int] = []

    def on_paste(r: PasteRecord) -> None:
        m = mask_mod.full_mask(r.plate.shape[:2], r.region, r.alpha)
        mask_mod.write_png(tmp_masks / f"{r.index:05d}.png", m)
        mask_frames.append(r.index)
        changed = mask_mod.changed_pixels(r.plate, r.composite)
        ious.append(mask_mod.iou(m >= mask_mod.MASK_LEVEL, changed))
        ious_any.append(mask_mod.iou(m >= 1, changed))
        if item.writes_real and r.landmarks is not None:
            marks[r.index] = (np.array(r.landmarks, copy=True), wm.changed_cells(r.composite, r.plate))

    summary = convert_video(item.clip, item.model, video, cfg, reporter, detector=detector, on_paste=on_paste)
    os.replace(tmp_masks, final_masks)
    meta = read_meta(item.model)
    swap_man = json.loads(Path(str(video) + ".facedub.json").read_text(encoding="utf-8"))

    real_id = None
    if item.writes_real:
        real_id = write_real(plan, item, root / real_video(plan, item), marks)
        write_json(root / real_label(item), {
            "type": LABEL_TYPE, "version": VERSION, "id": item.clip_id, "label": "real", "kind": "original",
            "identity": item.target, "consent_ids": {"identity": item.target_consent},
            "video": real_video(plan, item), "frames": summary.frames, "split": item.split, "output_id": real_id,
            "input": {"file": Path(item.clip).name, "sha256": _input_sha(swap_man)},
            "settings": {k: plan.convert[k] for k in ("crf", "preset", "max_frames")},
            "watermark": {"payload": "pristine", "strength": "same cells and levels as the swapped twin " + item.key},
        })
    iou = {"alpha_level": mask_mod.MASK_LEVEL, "diff_level": mask_mod.DIFF_LEVEL, "frames": len(ious),
           "min": round(min(ious), 4) if ious else None, "mean": round(float(np.mean(ious)), 4) if ious else None,
           "min_any": round(min(ious_any), 4) if ious_any else None, "mean_any": round(float(np.mean(ious_any)), 4) if ious_any else None}
    train = meta.get("train") if isinstance(meta.get("train"), Mapping) else {}
    label = {
        "type": LABEL_TYPE, "version": VERSION, "id": item.key, "label": "fake", "kind": "manipulated",
        "method": item.method, "architecture": meta.get("arch"), "model_id": meta.get("id"),
        "model_config": meta.get("config"), "model_step": meta.get("step"),
        "seeds": {"dataset": plan.spec.seed, "training": train.get("seed")},
        "settings": plan.convert,
        "source_identity": item.source, "target_identity": item.target,
        "consent_ids": {"source": item.source_consent, "target": item.target_consent},
        "video": swap_video(plan, item), "original": real_video(plan, item), "masks": mask_folder(item),
        "mask_format": "8-bit greyscale PNG per frame, <frame index:05d>.png: the paste alpha x 255 (0 = original pixel, bit for bit)",
        "frames": summary.frames, "swapped_frames": summary.swapped, "mask_frames": len(mask_frames),
        "split": item.split, "output_id": swap_man.get("output_id"),
        "input": {"file": Path(item.clip).name, "sha256": _input_sha(swap_man)},
        "mask_check": iou,
    }
    write_json(root / swap_label(item), label)
    state = {"item": item.key, "done": True, "fingerprint": plan.fingerprint, "mask_iou": iou, "frames": summary.frames,
             "swapped": summary.swapped, "real_output_id": real_id, "swap_output_id": label["output_id"]}
    write_json(root / state_file(item), state)  # last: the item counts as finished from here
    return state


def _input_sha(manifest: Mapping[str, Any]) -> str | None:
    ins = manifest.get("inputs") or []
    return ins[0].get("sha256") if ins and isinstance(ins[0], Mapping) else None


def write_real(plan: Plan, item: Item, out: Path, marks: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> str:
    """The real clip: decoded and encoded exactly as convert does (same reader, same writer
    settings, same audio copy), marked "pristine" with its swapped twin's face landmarks and
    changed cells (so every cell of both carries the same levels). Returns its output id."""
    from facedub.fileio import atomic_path
    from facedub.media.reader import decoder_threads, open_single
    from facedub.media.writer import VideoWriter, encoder_threads
    from facedub.safety import policy

    cfg = _convert_config(plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    reader = open_single(Path(item.clip), "dataset")
    ctx = policy.begin_pristine(item.clip, (item.target_consent,), settings={k: plan.convert[k] for k in ("crf", "preset", "max_frames")})
    with atomic_path(out) as tmp:
        sink = VideoWriter(
            tmp, reader.width, reader.height, reader.fps,
            audio_from=item.clip if reader.has_audio else None,
            crf=cfg.crf, preset=cfg.preset,
            audio_duration=None if cfg.max_frames is None else cfg.max_frames / reader.fps,
            metadata=ctx.writer_metadata(), threads=encoder_threads(reader.width, reader.height), timed=True,
        )
        try:
            for f in reader.frames(limit=cfg.max_frames, threads=decoder_threads(reader.width, reader.height)):
                face, cells = marks.get(f.index, (None, None))
                sink.write(policy.mark_frame(f.rgb, ctx, face, None, cells), f.time)
        except BaseException:
            sink.abort()
            raise
        sink.close()
        policy.finalize_output(tmp, ctx, final_path=out)
    return ctx.output_id


# ---------------------------------------------------------------------------------------
# The whole dataset
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetSummary:
    output: str
    items: int  # swapped clips
    real: int  # real clips
    built: int  # items built in this run (the rest were finished by an earlier one)
    splits: dict[str, list[str]]  # split → identities
    mask_iou_min: float | None  # lowest per-frame IoU of any mask with the changed pixels
    mask_iou_mean: float | None
    notes: tuple[str, ...] = ()


def staging_folder(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial")


def build_dataset(
    spec_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    reporter: Reporter | None = None,
    *,
    detector: Callable[[], Any] | None = None,
) -> DatasetSummary:
    """Build the dataset ``spec_path`` describes into ``out`` (which must not exist yet).

    The three steps a scheduler would spread out: :func:`prepare_build` (checks, plan, staging
    folder), :func:`build_item` for each item of :func:`pending_items` (anywhere, in any
    order), :func:`finish_build`. ``detector``: a factory of face detectors replacing the
    default one (tests)."""
    reporter = reporter or NullReporter()
    plan, staging, notes = prepare_build(spec_path, out, reporter)
    todo = pending_items(plan, staging)
    for k, item in enumerate(todo):
        reporter.note(f"dataset item {k + 1}/{len(todo)}: {item.key}")
        build_item(plan, item, staging, reporter, detector=detector() if detector is not None else None)
    return finish_build(plan, staging, out, built=len(todo), notes=notes)


def prepare_build(spec_path: str | os.PathLike[str], out: str | os.PathLike[str], reporter: Reporter | None = None) -> tuple[Plan, Path, list[str]]:
    """Every check (consent of each identity, models, clips) before anything is written, then
    the staging folder (kept when it holds an unfinished build of the same plan: resume).
    Returns (plan, staging folder, notes)."""
    out = Path(out)
    if out.exists():
        raise BadInput(f"{out}: already exists; give a new folder for the dataset")
    if not out.parent.is_dir():
        raise BadInput(f"{out}: folder {out.parent} does not exist")
    spec = load_spec(spec_path)  # consent of every identity, models, clips: before any write
    plan = make_plan(spec)
    check_inputs(plan, reporter)
    staging = staging_folder(out)
    notes: list[str] = []
    plan_file = staging / "plan.json"
    if staging.exists():
        try:
            old = json.loads(plan_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise BadInput(f"{staging}: exists but is not an unfinished facedub dataset; remove it or choose another output") from None
        if old.get("fingerprint") != plan.fingerprint:
            notes.append(f"{staging}: an unfinished build of a different spec or input was discarded")
            shutil.rmtree(staging)
    staging.mkdir(exist_ok=True)
    write_json(plan_file, {"type": "facedub.dataset.plan", "fingerprint": plan.fingerprint, "spec": spec.path,
                           "items": [asdict(i) for i in plan.items]})
    return plan, staging, notes


def pending_items(plan: Plan, staging: str | os.PathLike[str]) -> list[Item]:
    """The items not finished yet in ``staging`` (all of them in a fresh build)."""
    return [i for i in plan.items if _finished(Path(staging), plan, i) is None]


def finish_build(plan: Plan, staging: str | os.PathLike[str], out: str | os.PathLike[str], built: int = 0, notes: list[str] | None = None) -> DatasetSummary:
    """Splits and dataset.json once every item is finished, then the rename to ``out``."""
    staging = Path(staging)
    states = []
    for item in plan.items:
        st = _finished(staging, plan, item)
        if st is None:
            raise BadInput(f"{staging}: item {item.key} is not finished; build it before finishing the dataset")
        states.append(st)
    return _finish(plan, staging, Path(out), states, built, list(notes or []))


def _finished(staging: Path, plan: Plan, item: Item) -> dict[str, Any] | None:
    try:
        st = json.loads((staging / state_file(item)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if st.get("fingerprint") != plan.fingerprint or not st.get("done"):
        return None
    needed = [swap_video(plan, item), swap_label(item), mask_folder(item)] + ([real_video(plan, item), real_label(item)] if item.writes_real else [])
    return st if all((staging / p).exists() for p in needed) else None


def _finish(plan: Plan, staging: Path, out: Path, states: list[dict[str, Any]], built: int, notes: list[str]) -> DatasetSummary:
    by_split: dict[str, dict[str, list[Any]]] = {s: {"identities": [], "original": [], "manipulated": [], "pairs": []} for s in SPLITS}
    for ident, s in sorted(plan.splits.items()):
        by_split[s]["identities"].append(ident)
    for item in plan.items:
        d = by_split[item.split]
        if item.writes_real:
            d["original"].append(item.clip_id)
        d["manipulated"].append(f"{item.method}/{item.key}")
        d["pairs"].append([item.clip_id, item.source])
    for s in SPLITS:
        write_json(staging / "splits" / f"{s}.json", {"split": s, **by_split[s]})
        if not by_split[s]["identities"]:
            notes.append(f"split {s} is empty: identities linked by pairs stay together, and there are too few separate groups")
    ious_min = [st["mask_iou"]["min"] for st in states if st["mask_iou"]["min"] is not None]
    ious_mean = [st["mask_iou"]["mean"] for st in states if st["mask_iou"]["mean"] is not None]
    summary = DatasetSummary(
        output=str(out), items=len(plan.items), real=sum(1 for i in plan.items if i.writes_real), built=built,
        splits={s: by_split[s]["identities"] for s in SPLITS},
        mask_iou_min=min(ious_min) if ious_min else None,
        mask_iou_mean=round(float(np.mean(ious_mean)), 4) if ious_mean else None,
        notes=tuple(notes),
    )
    write_json(staging / "dataset.json", {
        "type": DATASET_TYPE, "version": VERSION, "name": plan.spec.name, "seed": plan.spec.seed,
        "fingerprint": plan.fingerprint, "settings": plan.convert, "split_shares": list(plan.spec.splits),
        "identities": {k: {"consent_id": v.consent_id, "synthetic": v.synthetic, "split": plan.splits[k]} for k, v in sorted(plan.spec.identities.items())},
        "items": [{"id": i.key, "method": i.method, "source": i.source, "target": i.target, "original": i.clip_id, "split": i.split} for i in plan.items],
        "mask_check": {"alpha_level": mask_mod.MASK_LEVEL, "diff_level": mask_mod.DIFF_LEVEL, "iou_min": summary.mask_iou_min, "iou_mean": summary.mask_iou_mean},
        "layout": "FaceForensics++-like: original_sequences/facedub/c<crf>/videos, manipulated_sequences/<method>/c<crf>/videos and masks/, labels/, splits/",
    })
    shutil.rmtree(staging / "state", ignore_errors=True)
    (staging / "plan.json").unlink(missing_ok=True)
    os.rename(staging, out)  # the dataset appears whole, or not at all
    return replace(summary)
