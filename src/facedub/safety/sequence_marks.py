"""Provenance on image sequences: the watermark in float or 16-bit pixels, tags in every file's
header, a manifest listing every file with its sha256, and verification of a folder.

* **Watermark** — the same mark as video (:mod:`facedub.safety.watermark`: payload, tile,
  shaping by the plate's texture, strongest in the pasted face), computed on the
  display-referred 8-bit picture the model saw, as a whole number of display levels ``d`` per
  pixel. It is added in the display-referred domain and mapped back through the plate's own
  colour transform: ``out = value + (inv(view + d/255) − inv(view))``. Where ``d`` is 0 the
  value is untouched; elsewhere a pixel differs from the plate by the mark alone (no round
  trip through 8 bit, no colour shift). 16-bit sRGB plates get exactly ``257·d`` code values,
  8-bit ones ``d``; float EXR values the linear equivalent of ``d`` levels (then rounded to
  half when the plate is half).
* **Tags** — ``facedub_output_id``, ``facedub_version``, ``comment`` and the colour spaces in
  each EXR header, PNG ``tEXt`` chunk, TIFF description and DPX user data.
* **Manifest** — ``<stem>.<first>-<last>.facedub.json`` in every output folder: the output id,
  inputs, model, consent ids, settings, colour, and each written file with its role
  (plate / matte / face), frame number and sha256. One render split into chunks writes one
  manifest per chunk; each lists only its own files, all under the same output id (the id is
  derived from the job, not drawn at random, so every chunk carries the same mark).
* **C2PA** — with ``--c2pa-frames``, each PNG and TIFF frame is signed like a single image
  (:func:`sign_frame`; c2pa-python binds both formats). Off by default: a signature costs 0.1-0.2 s
  a 1080p frame, and C2PA's salts, claim ids and ECDSA signatures are random, so signed
  frames differ from run to run and the chunks of a shot are no longer bit-identical. EXR and
  DPX have no C2PA binding. ``verify`` reads the first frame's C2PA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from facedub import __version__
from facedub.errors import BadInput
from facedub.fileio import sha256_file, write_json
from facedub.safety import provenance as prov
from facedub.safety import watermark as wm

MANIFEST_TYPE = "facedub.sequence-manifest"
TAG_PLATE_SPACE = "facedub_plate_space"
TAG_VIEW_SPACE = "facedub_view_space"
TAG_ROLE = "facedub_role"


# ----------------------------------------------------------------------------------------
# Output id: shared by every chunk of one render


def job_output_id(parts: Mapping[str, Any]) -> str:
    """A 12-hex-digit output id derived from what defines a render (model, input and output
    patterns, settings; never the frame range), so chunks rendered on different machines
    carry one mark and one id."""
    blob = json.dumps(prov._jsonable(dict(parts)), sort_keys=True, ensure_ascii=True).encode()
    return hashlib.sha256(b"facedub-sequence-output-v1\x00" + blob).hexdigest()[: wm.ID_BITS // 4]


# ----------------------------------------------------------------------------------------
# The mark as display levels per pixel


def _pattern_pixels(output_id: str, h: int, w: int) -> np.ndarray:
    cells = wm.tile_pattern(wm.encode_payload(output_id))
    gh, gw = -(-h // wm.CELL), -(-w // wm.CELL)
    return np.tile(cells, (-(-gh // wm.GRID), -(-gw // wm.GRID)))[:gh, :gw]


def mark_levels(watermarker: wm.Watermarker, frame8: np.ndarray, plate8: np.ndarray, face: np.ndarray | None) -> np.ndarray:
    """The watermark's change per pixel in display levels (H×W float32, whole numbers):
    exactly what ``watermarker.embed(frame8, face, plate8)`` adds before its uint8 clipping."""
    h, w = frame8.shape[:2]
    pasted = wm.changed_cells(frame8, plate8) if face is not None else None
    amp = watermarker.amplitude(plate8, face, pasted)
    cells = np.rint(amp * _pattern_pixels(watermarker.output_id, h, w)).astype(np.float32)
    return np.repeat(np.repeat(cells, wm.CELL, 0), wm.CELL, 1)[:h, :w]


def add_in_view(values: np.ndarray, view: np.ndarray, delta_view: np.ndarray, colour: Any) -> np.ndarray:
    """``values`` (the plate's space) moved by ``delta_view`` (H×W×3 or H×W, display units) as
    seen through ``colour``: ``values + inv(view + delta) − inv(view)``; untouched where delta is 0."""
    d = delta_view if delta_view.ndim == 3 else np.repeat(delta_view[..., None], 3, 2)
    if colour.identity:
        return values + d
    rows = np.flatnonzero(np.any(d != 0, axis=(1, 2)))
    out = values.copy()
    if rows.size:
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        moved = colour.from_view(view[r0:r1] + d[r0:r1]) - colour.from_view(view[r0:r1])
        out[r0:r1] += np.where(d[r0:r1] != 0, moved, 0.0)
    return out


@dataclass
class MarkedFrame:
    values: np.ndarray  # the frame in the plate's space (float code values), marked
    face_values: np.ndarray | None  # the face layer (premultiplied, plate space) with the mark where it covers, or None
    levels: np.ndarray  # the mark in display levels per pixel (H×W)


def mark_values(
    ctx: Any,
    values: np.ndarray,
    view: np.ndarray,
    plate8: np.ndarray,
    colour: Any,
    face: np.ndarray | None = None,
    face_layer: np.ndarray | None = None,
    alpha: np.ndarray | None = None,
) -> MarkedFrame:
    """The visible label (unless switched off) and the invisible watermark on one float frame.

    ``values``: the output frame in the plate's space; ``view``: the same in the
    display-referred space (float); ``plate8``: the display-referred 8-bit input frame (the
    texture the mark hides in); ``face``: landmarks of the pasted face; ``face_layer`` and
    ``alpha``: the premultiplied face layer and its alpha (H×W), which get the mark where
    alpha covers. Counts the frame as marked for :func:`finish`.
    """
    from facedub.media.sequence import display8
    from facedub.safety.label import render_label

    values = np.array(values, dtype=np.float32, copy=True)
    view = np.array(view, dtype=np.float32, copy=True)
    h, w = values.shape[:2]
    if ctx.labeler is not None:
        ys, xs = ctx.labeler.box(h, w)
        patch, a = render_label(h, w, ctx.labeler.text)
        before = view[ys, xs]
        after = before * (1.0 - a) + (patch.astype(np.float32) / 255.0) * a
        values[ys, xs] = add_in_view(values[ys, xs], before, after - before, colour)
        view[ys, xs] = after
        plate8 = ctx.labeler.apply(plate8)  # the label is part of the picture the mark hides in
    frame8 = display8(view)
    levels = mark_levels(ctx.watermarker, frame8, np.ascontiguousarray(plate8), face)
    delta = levels / np.float32(255.0)
    marked = add_in_view(values, view, delta, colour)
    face_out = None
    if face_layer is not None and alpha is not None:
        face_out = face_layer.copy()
        face_out[..., :3] += (marked - values) * alpha[..., None]
    with ctx._lock:
        ctx.frames_marked += 1
    return MarkedFrame(marked, face_out, levels)


def tags_for(ctx: Any, colour: Any, role: str) -> dict[str, str]:
    """facedub's header tags for one sequence file (no time stamp: files stay reproducible)."""
    tags = {k: v for k, v in prov.tags_for(ctx.info).items() if k != "description"}
    tags[TAG_ROLE] = role
    tags[TAG_PLATE_SPACE] = colour.plate_space
    tags[TAG_VIEW_SPACE] = colour.view_space
    tags["software"] = f"{prov.TOOL} {ctx.info.tool_version}"
    return tags


# ----------------------------------------------------------------------------------------
# Manifest


def manifest_name(stem: str, first: int, last: int) -> str:
    return f"{stem}.{first}-{last}{prov.MANIFEST_SUFFIX}"


def write_manifests(
    ctx: Any,
    files: list[dict[str, Any]],
    stem: str,
    frames: tuple[int, int],
    colour: Any,
    inputs: Mapping[str, Any],
) -> list[Path]:
    """One manifest per folder that received files (the same content, paths relative to it).

    ``files``: {"path", "role", "frame", "sha256"} per written file. Refuses when no frame of
    this output was marked (as :func:`facedub.safety.policy.finalize_output` does)."""
    if ctx.frames_marked == 0:
        raise RuntimeError(f"{stem}: refusing to finish a sequence whose frames were never watermarked")
    info = ctx.info
    folders = sorted({str(Path(f["path"]).resolve().parent) for f in files})
    written = []
    for folder in folders:
        body = {
            "type": MANIFEST_TYPE,
            "version": 1,
            "tool": prov.TOOL,
            "tool_version": info.tool_version,
            "output_id": info.output_id,
            "created": info.created,
            "ai_generated": True,
            "digital_source_type": prov.DIGITAL_SOURCE_TYPE,
            "frames": list(frames),
            "inputs": prov._jsonable(dict(inputs)),
            "model_id": info.model_id,
            "faceset_ids": list(info.faceset_ids),
            "consent_ids": list(info.consent_ids),
            "settings": info.settings,
            "visible_label": info.visible_label,
            "colour": colour.describe(),
            "watermark": {"scheme": "facedub-tiled-ss-v1", "marker": f"{wm.MARKER:04x}", "payload_bits": wm.PAYLOAD_BITS,
                          "coded_bits": wm.CODED_BITS, "domain": "display-referred levels, mapped back through the plate's colour transform"},
            "c2pa": any(f.get("c2pa") for f in files),
            "files": [
                {**{k: v for k, v in f.items() if k != "path"}, "path": os.path.relpath(Path(f["path"]).resolve(), folder)}
                for f in files
            ],
        }
        mp = Path(folder) / manifest_name(stem, *frames)
        write_json(mp, body)
        written.append(mp)
    return written


def c2pa_format(path: Path) -> bool:
    """Whether C2PA can be embedded in a sequence frame of this format (PNG, TIFF)."""
    return path.suffix.lower() in (".png", ".tif", ".tiff")


def sign_frame(path: Path, ctx: Any, creds: Any) -> None:
    """Embed a signed C2PA manifest in one written PNG/TIFF frame (in place, atomic)."""
    prov.sign_c2pa(path, ctx.info, title=path.name, creds=creds)


def file_record(path: Path, role: str, frame: int) -> dict[str, Any]:
    return {"path": str(path), "role": role, "frame": frame, "sha256": sha256_file(path)}


# ----------------------------------------------------------------------------------------
# Verify a sequence folder or pattern

_NUMBERED = re.compile(r"^(.*?)(\d+)(\.(?:exr|png|tif|tiff|dpx))$", re.IGNORECASE)


def find_sequence(target: str | os.PathLike[str]) -> tuple[Any, list[int]]:
    """(Pattern, frame numbers) for a folder (its largest group of numbered EXR/PNG/TIFF/DPX files)
    or a pattern. BadInput when there is none."""
    from facedub.media.sequence import Pattern, frames_on_disk, parse_pattern

    s = os.fspath(target)
    pat = parse_pattern(s)
    if pat is not None:
        return pat, frames_on_disk(pat)
    folder = Path(s)
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such folder")
    groups: dict[tuple[str, int, str], list[int]] = {}
    for name in sorted(os.listdir(folder)):
        m = _NUMBERED.match(name)
        if m:
            digits = m.group(2)
            pad = len(digits) if digits.startswith("0") or len(digits) > 1 else 0
            groups.setdefault((m.group(1), pad, m.group(3)), []).append(int(digits))
    if not groups:
        raise BadInput(f"{folder}: holds no numbered .exr, .png, .tif or .dpx frames")
    (prefix, pad, suffix), nums = max(groups.items(), key=lambda kv: len(kv[1]))
    # files of one sequence padded to 4 digits may run past 9999: all share the shortest width
    return Pattern(str(folder / f"{prefix}%0{pad}d{suffix}"), folder, prefix, suffix, pad), sorted(nums)


def _manifests_in(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for p in sorted(folder.glob(f"*{prov.MANIFEST_SUFFIX}")):
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(d, dict) and d.get("type") == MANIFEST_TYPE:
            out.append((p, d))
    return out


def verify_sequence(target: str | os.PathLike[str], max_frames: int = 48) -> Any:
    """A :class:`facedub.safety.verify.VerifyReport` (kind "sequence") for a folder or pattern.

    watermark: decoded over up to ``max_frames`` frames spread over the sequence, each seen
    through the colour transform named in its tags (else the format's default); tags: those
    of the first frame; manifest: every facedub sequence manifest in the folder, with the
    sha256 of each file it lists there checked (``sha256_matches`` when all match).
    """
    from facedub.media.sequence import Colour, ColourConfig, read_frame, read_text_tags, to_unit
    from facedub.safety.verify import C2paSignal, ManifestSignal, TagSignal, VerifyReport, WatermarkSignal

    pattern, nums = find_sequence(target)
    if not nums:
        raise BadInput(f"{pattern}: no files match")
    fmt = pattern.format
    first_tags = read_text_tags(pattern.path(nums[0]))
    colour = Colour(ColourConfig(plate_space=first_tags.get(TAG_PLATE_SPACE), view_space=first_tags.get(TAG_VIEW_SPACE) or ColourConfig().view_space), fmt)
    step = max(1, len(nums) // max_frames)
    dec = wm.WatermarkDecoder(max_frames)
    for n in nums[::step][:max_frames]:
        try:
            values = to_unit(read_frame(pattern.path(n)))
        except BadInput:
            continue
        try:
            dec.add(colour.to_view(values) * np.float32(255.0))
        except ValueError:  # a frame of another size: not this sequence
            continue
    r = dec.result()
    wsig = WatermarkSignal(r.found, r.output_id, r.bits_agreeing, r.bits_total, round(r.sync_z, 2), round(r.score, 4), round(r.scale, 4), r.frames)
    tags = {k: v for k, v in first_tags.items() if k.startswith("facedub_") or (k == "comment" and prov.TOOL in v)}
    tag_id = tags.get(prov.TAG_ID)
    tsig = TagSignal(bool(tags), tag_id, tags)

    folder = pattern.folder
    manifests = _manifests_in(folder)
    msig = ManifestSignal(False, False, str(folder), None, False, None)
    if manifests:
        listed, ok, ids = 0, 0, set()
        for mp, d in manifests:
            ids.add(d.get("output_id"))
            for f in d.get("files", []) or []:
                p = (mp.parent / str(f.get("path", ""))).resolve()
                if p.parent != folder.resolve():
                    continue
                listed += 1
                if p.is_file() and sha256_file(p) == f.get("sha256"):
                    ok += 1
        known = {x for x in (r.output_id, tag_id) if x}
        sha_ok = listed > 0 and ok == listed
        mid = next(iter(ids)) if len(ids) == 1 else None
        summary = {"manifests": [str(mp) for mp, _ in manifests], "files_listed_here": listed, "files_matching": ok, "output_ids": sorted(str(i) for i in ids)}
        msig = ManifestSignal(sha_ok or bool(ids & known), True, str(manifests[0][0]) if len(manifests) == 1 else f"{len(manifests)} manifests in {folder}",
                              mid, sha_ok, summary)
    if c2pa_format(pattern.path(nums[0])):
        cs = prov.read_c2pa(pattern.path(nums[0]))
        csig = C2paSignal(cs.present and cs.by_facedub, cs.present, cs.validation_state, cs.ai_generated, cs.output_id, cs.failures,
                          cs.error if cs.present else "no C2PA in the first frame (convert signs PNG/TIFF frames with --c2pa-frames)")
    else:
        csig = C2paSignal(False, False, None, False, None, (), f"{fmt.upper() if fmt else 'this format'} frames have no C2PA binding")
    output_id = r.output_id or tag_id or (msig.output_id if msig.found else None)
    marked = wsig.found or tsig.found or msig.found
    listed_here = (msig.manifest or {}).get("files_listed_here", 0) if msig.present else 0
    altered = bool(msig.found and listed_here and not msig.sha256_matches)  # a listed frame changed or went missing
    return VerifyReport(str(pattern), "sequence", marked, output_id, wsig, tsig, msig, csig, altered=altered)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def input_hashes(paths: Iterable[Path]) -> list[dict[str, str]]:
    return [{"path": str(p.resolve()), "sha256": sha256_file(p)} for p in paths]


__all__ = [
    "MarkedFrame", "add_in_view", "file_record", "find_sequence", "job_output_id", "mark_levels", "mark_values",
    "tags_for", "verify_sequence", "write_manifests", "__version__",
]
