"""The dataset spec: a TOML file naming identities (each with its consent record), pairs of
identities with the trained model that swaps them, and the target clips each pair swaps.

::

    [dataset]
    name = "facedub-demo"
    seed = 0                      # split assignment (recorded in every label)
    frames = 50                   # frames per clip (omit: whole clips)
    splits = [0.7, 0.15, 0.15]    # train / val / test shares, by identity

    [convert]                     # any ConvertConfig field; visible_label is always off
    crf = 23

    [identities.aiface1]
    consent = "consent/aiface1.json"

    [identities.aiface2]
    consent = "consent/aiface2.json"

    [[pairs]]
    source = "aiface2"            # whose face goes in
    target = "aiface1"            # whose footage is modified
    model = "models/aiface2-to-aiface1"   # trained by 'facedub train' / 'swap' beforehand
    clips = ["clips/aiface1-a.mp4", "clips/aiface1-b.mp4"]

Relative paths are relative to the spec file. Every check here runs before anything is
written: a problem is one line naming the file (BadInput, exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from facedub.errors import BadInput
from facedub.fileio import read_toml

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")  # no "_": it joins ids in swap names


@dataclass(frozen=True)
class Identity:
    id: str
    consent_path: str  # the consent record file (absolute)
    consent_id: str  # its record id (checked valid when the spec was loaded)
    synthetic: bool  # the record says: an AI-generated identity, no real person


@dataclass(frozen=True)
class Pair:
    source: str  # identity id whose face goes in
    target: str  # identity id whose footage is modified
    model: str  # model folder (absolute)
    clips: tuple[str, ...]  # target clips (absolute paths)


@dataclass(frozen=True)
class DatasetSpec:
    path: str  # the spec file
    name: str
    seed: int
    frames: int | None  # frames per clip; None = whole clips
    splits: tuple[float, float, float]  # train, val, test shares
    convert: dict[str, Any]  # ConvertConfig overrides
    identities: dict[str, Identity]
    pairs: tuple[Pair, ...]


def _table(d: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, Mapping):
        raise BadInput(f"{where}: [{key}] must be a table")
    return dict(v)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and check a dataset spec; every identity's consent record is loaded and checked."""
    from facedub.convert.config import ConvertConfig
    from facedub.safety import consent as consent_mod

    p = Path(path)
    raw = read_toml(p, "dataset spec")
    base = p.resolve().parent
    unknown = set(raw) - {"dataset", "convert", "identities", "pairs"}
    if unknown:
        raise BadInput(f"{p}: unknown sections {sorted(unknown)} (dataset, convert, identities, pairs)")

    ds = _table(raw, "dataset", str(p))
    bad = set(ds) - {"name", "seed", "frames", "splits"}
    if bad:
        raise BadInput(f"{p}: unknown keys in [dataset]: {sorted(bad)}")
    name = str(ds.get("name", p.stem))
    seed = ds.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise BadInput(f"{p}: [dataset] seed must be an integer")
    frames = ds.get("frames")
    if frames is not None and (not isinstance(frames, int) or isinstance(frames, bool) or frames < 1):
        raise BadInput(f"{p}: [dataset] frames must be a whole number of 1 or more")
    shares = ds.get("splits", [0.7, 0.15, 0.15])
    if (not isinstance(shares, list) or len(shares) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in shares)
            or sum(shares) <= 0):
        raise BadInput(f"{p}: [dataset] splits must be three shares (train, val, test), not negative, e.g. [0.7, 0.15, 0.15]")
    total = float(sum(shares))
    splits = (shares[0] / total, shares[1] / total, shares[2] / total)

    conv = _table(raw, "convert", str(p))
    known = {f.name for f in fields(ConvertConfig)}
    bad = set(conv) - known
    if bad:
        raise BadInput(f"{p}: unknown keys in [convert]: {sorted(bad)}")
    if "visible_label" in conv or "max_frames" in conv:
        raise BadInput(f"{p}: [convert] cannot set visible_label (always off in a dataset, so it is no cue) or max_frames (use [dataset] frames)")
    try:
        ConvertConfig(**conv)
    except (TypeError, ValueError) as e:
        raise BadInput(f"{p}: [convert] {e}") from None

    identities: dict[str, Identity] = {}
    for ident, entry in _table(raw, "identities", str(p)).items():
        if not ID_RE.match(ident):
            raise BadInput(f"{p}: identity id {ident!r} must be letters, digits and '-' (up to 64)")
        if not isinstance(entry, Mapping) or not isinstance(entry.get("consent"), str):
            raise BadInput(f"{p}: [identities.{ident}] needs consent = \"<consent record file>\"")
        cpath = (base / entry["consent"]).resolve()
        rec = consent_mod.load_consent(cpath)  # BadInput naming the file when missing or edited
        consent_mod.check_valid(rec, where=str(cpath))
        identities[ident] = Identity(ident, str(cpath), rec.id, bool(rec.synthetic))

    pairs_raw = raw.get("pairs", [])
    if not isinstance(pairs_raw, list) or not pairs_raw:
        raise BadInput(f"{p}: no [[pairs]] (each names a source, a target, a model and the target's clips)")
    pairs: list[Pair] = []
    for k, pr in enumerate(pairs_raw):
        where = f"{p}: pair {k + 1}"
        if not isinstance(pr, Mapping):
            raise BadInput(f"{where} must be a table")
        bad = set(pr) - {"source", "target", "model", "clips"}
        if bad:
            raise BadInput(f"{where}: unknown keys {sorted(bad)}")
        for role in ("source", "target"):
            who = pr.get(role)
            if not isinstance(who, str):
                raise BadInput(f"{where}: {role} must name an identity")
            if who not in identities:
                raise BadInput(f"{p}: identity {who!r} ({role} of pair {k + 1}) has no consent record: add [identities.{who}] consent = \"FILE\"")
        if pr["source"] == pr["target"]:
            raise BadInput(f"{where}: source and target are the same identity")
        model = pr.get("model")
        if not isinstance(model, str):
            raise BadInput(f"{where}: model must be a model folder (train one with 'facedub train' first)")
        mpath = (base / model).resolve()
        if not (mpath / "model.json").is_file():
            raise BadInput(f"{mpath}: not a facedub model folder (no model.json)")
        clips = pr.get("clips")
        if not isinstance(clips, list) or not clips or not all(isinstance(c, str) for c in clips):
            raise BadInput(f"{where}: clips must be a list of the target's video files")
        cpaths = []
        for c in clips:
            cp = (base / c).resolve()
            if not cp.is_file():
                raise BadInput(f"{cp}: clip not found ({where})")
            cpaths.append(str(cp))
        if len(set(cpaths)) != len(cpaths):
            raise BadInput(f"{where}: a clip is listed twice")
        pairs.append(Pair(pr["source"], pr["target"], str(mpath), tuple(cpaths)))
    keys = [(q.source, q.target) for q in pairs]
    if len(set(keys)) != len(keys):
        raise BadInput(f"{p}: the same source and target appear in two pairs; list all its clips in one")
    for q in pairs:
        _check_model_consent(q, identities)
    used = {q.source for q in pairs} | {q.target for q in pairs}
    return DatasetSpec(str(p.resolve()), name, seed, frames, splits, conv, {k: v for k, v in identities.items() if k in used}, tuple(pairs))


def _check_model_consent(pair: Pair, identities: Mapping[str, Identity]) -> None:
    """The model must have been trained under the very consent records the spec names."""
    from facedub.model.checkpoint import read_meta

    meta = read_meta(pair.model)
    consent = meta.get("consent") if isinstance(meta.get("consent"), Mapping) else {}
    for role, who in (("source", pair.source), ("target", pair.target)):
        rec = consent.get(role) if isinstance(consent, Mapping) else None
        got = rec.get("id") if isinstance(rec, Mapping) else None
        want = identities[who].consent_id
        if got != want:
            raise BadInput(
                f"{pair.model}: its {role} consent record is {got or 'missing'}, but identity {who!r} has {want} "
                f"({identities[who].consent_path}); the model must be trained under the identity's own record"
            )
