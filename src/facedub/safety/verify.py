"""``verify_file``: which facedub marks does a video or image carry? Each signal separately.

* watermark — decoded from the pixels (up to ``max_frames`` frames spread over a video,
  combined by soft voting); survives re-encoding, resizing, cropping and metadata stripping.
* tags — container metadata / PNG text / JPEG comment naming facedub and the output id.
* manifest — ``<file>.facedub.json`` beside the file; counts when it names this file's
  sha256 or the output id found in the pixels or tags.
* C2PA — embedded Content Credentials and their validation state (MP4, MOV, PNG, JPEG;
  an FFV1 .mkv has no C2PA binding, so its manifest's sha256 is its integrity check).

``marked`` is true when any of them is found. ``altered`` is true when a manifest beside the
file belongs to it (same output id as the pixels or tags) but lists another sha256: the file
was changed after facedub wrote it (the CLI exits 3).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facedub.errors import BadInput
from facedub.fileio import sha256_file
from facedub.safety import provenance as prov
from facedub.safety import watermark as wm
from facedub.safety.content_gate import is_image_path, read_image


@dataclass(frozen=True)
class WatermarkSignal:
    found: bool
    output_id: str | None
    bits_agreeing: int
    bits_total: int
    sync_z: float
    score: float
    scale: float
    frames: int
    pristine: bool = False  # the marker says "pristine": a dataset's unaltered real clip


@dataclass(frozen=True)
class TagSignal:
    found: bool
    output_id: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class ManifestSignal:
    found: bool  # present and belonging to this file
    present: bool  # a manifest file exists beside it
    path: str
    output_id: str | None
    sha256_matches: bool
    manifest: dict[str, Any] | None


@dataclass(frozen=True)
class C2paSignal:
    found: bool  # a C2PA manifest written by facedub
    present: bool
    validation_state: str | None
    ai_generated: bool
    output_id: str | None
    failures: tuple[str, ...]
    error: str | None


@dataclass(frozen=True)
class VerifyReport:
    path: str
    kind: str  # "video" | "image"
    marked: bool  # any facedub mark found
    output_id: str | None  # the output id the signals agree on (watermark first)
    watermark: WatermarkSignal
    tags: TagSignal
    manifest: ManifestSignal
    c2pa: C2paSignal
    pristine: bool = False  # a facedub dataset's real clip (no face replaced), not a swap
    altered: bool = False  # its own manifest lists another sha256: changed after facedub wrote it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        w, t, m, c = self.watermark, self.tags, self.manifest, self.c2pa
        what = "pristine facedub dataset clip (real footage, no face replaced)" if self.pristine else "facedub output" if self.marked else "no facedub mark found"
        lines = [f"{self.path}: {what}" + (f" (output id {self.output_id})" if self.output_id else "")
                 + (": ALTERED since facedub wrote it (its sha256 is not the one its manifest lists)" if self.altered else "")]
        lines.append(
            f"  watermark: {'found' if w.found else 'not found'}"
            + (f", output id {w.output_id}" if w.output_id else "")
            + (" (pristine)" if w.pristine else "")
            + f", {w.bits_agreeing}/{w.bits_total} coded bits agreeing, sync {w.sync_z:.1f} sd, {w.frames} frame(s), scale {w.scale:.2f}"
        )
        lines.append(f"  tags: {'found, output id ' + str(t.output_id) if t.found else 'none'}")
        if m.present:
            lines.append(f"  manifest: {m.path} " + ("(matches this file)" if m.sha256_matches else "(belongs to this output id)" if m.found else "(does not match this file)"))
        else:
            lines.append("  manifest: none beside the file")
        if c.present:
            lines.append(
                f"  C2PA: {c.validation_state}" + (", AI-generated (trainedAlgorithmicMedia)" if c.ai_generated else "")
                + (f", output id {c.output_id}" if c.output_id else "")
                + (f"; notes: {', '.join(c.failures)}" if c.failures else "")
            )
        else:
            lines.append("  C2PA: none" + (f" ({c.error})" if c.error else ""))
        return lines


def _video_frames(path: Path, max_frames: int):
    """Up to ``max_frames`` frames spread over the video.

    Not ``media.reader``: that reader refuses truncated or corrupt files and tiny pictures,
    which is right for inputs to convert, while verify must read what it can of any file
    (a cut, a damaged download, a thumbnail-sized copy) and report the marks it finds."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise BadInput(f"{path}: not a readable image or video ({e})") from None
    with container:
        if not container.streams.video:
            raise BadInput(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = int(stream.frames or 0)
        step = max(1, n // max_frames) if n else 1
        got = 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % step == 0:
                    yield frame.to_ndarray(format="rgb24")
                    got += 1
                    if got >= max_frames:
                        break
        except av.error.FFmpegError as e:
            if got == 0:
                raise BadInput(f"{path}: video could not be decoded ({e})") from None
        if got == 0:
            raise BadInput(f"{path}: video has no frames")


def verify_file(path: str | os.PathLike[str], max_frames: int = 48) -> VerifyReport:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    kind = "image" if is_image_path(path) else "video"
    dec = wm.WatermarkDecoder(max_frames)
    if kind == "image":
        dec.add(read_image(path))
    else:
        for rgb in _video_frames(path, max_frames):
            dec.add(rgb)
    r = dec.result()
    wsig = WatermarkSignal(r.found, r.output_id, r.bits_agreeing, r.bits_total, round(r.sync_z, 2), round(r.score, 4), round(r.scale, 4), r.frames, r.pristine)

    tags = prov.read_tags(path)
    tag_id = tags.get(prov.TAG_ID)
    tsig = TagSignal(bool(tags), tag_id, tags)

    cs = prov.read_c2pa(path)
    csig = C2paSignal(cs.present and cs.by_facedub, cs.present, cs.validation_state, cs.ai_generated, cs.output_id, cs.failures, cs.error)

    man = prov.read_manifest(path)
    mp = prov.manifest_path(path)
    altered = False
    if man is not None:
        sha_ok = man.get("output_sha256") == sha256_file(path)
        known_ids = {x for x in (r.output_id, tag_id, cs.output_id) if x}
        mfound = sha_ok or man.get("output_id") in known_ids
        msig = ManifestSignal(mfound, True, str(mp), man.get("output_id"), sha_ok, man)
        altered = mfound and not sha_ok
    else:
        msig = ManifestSignal(False, mp.exists(), str(mp), None, False, None)

    output_id = r.output_id or tag_id or cs.output_id or (msig.output_id if msig.found else None)
    marked = wsig.found or tsig.found or msig.found or csig.found
    # Pristine by the pixels when the watermark is read; else by the tags or the manifest alone
    # (a C2PA claim of AI generation, or a swap's watermark, always wins over them).
    if wsig.found:
        pristine = wsig.pristine
    else:
        said = tags.get(prov.TAG_KIND) == prov.PRISTINE or (msig.found and (msig.manifest or {}).get("kind") == prov.PRISTINE)
        pristine = bool(said and not (csig.found and cs.ai_generated))
    return VerifyReport(str(path), kind, marked, output_id, wsig, tsig, msig, csig, pristine, altered)
