"""Occlusion in training: what is in front of a training face carries no reconstruction loss.

With ``TrainConfig.occlusion == "auto"`` (``facedub train --occlusion auto``, the same name
and meaning as convert's option) the occlusion network of :mod:`facedub.convert.occlusion`
looks at every faceset crop once and says which part of the face is hidden (a hand, a
microphone, a glasses frame, hair). The part of the face region it calls hidden becomes a
*keep* mask of 0 in the training context; the reconstruction loss is multiplied by it, so the
decoders are not taught to paint the occluder as part of the face.

The network's output for a crop depends only on the crop and the weights, so it is computed
once per faceset image and cached as an 8-bit grey PNG of the visible-face map (the network's
own ``SEG_SIZE`` px), in ``$FACEDUB_HOME/cache/occlusion/<weights sha256[:16]>/<crop
sha256>.png`` (written atomically). A new weights file or an edited crop gives a new key; the
keep mask of any model size and coverage is resampled from the cached map at load time.

As in convert, a map that calls less than ``MIN_VISIBLE`` of the face outline visible is not
trusted (the network cannot read that face) and the whole face counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, get_args

import numpy as np

OcclusionMode = Literal["auto", "off"]
OCCLUSION_MODES: tuple[str, ...] = get_args(OcclusionMode)
HIDDEN_FROM = 0.5  # a context pixel whose hidden share reaches this carries no loss


def cache_root() -> Path:
    """Where visible-face maps of faceset crops are cached (under ``$FACEDUB_HOME``)."""
    from facedub.safety.provenance import facedub_home

    return facedub_home() / "cache" / "occlusion"


@dataclass(frozen=True)
class KeepMasks:
    """One identity's keep masks (uint8 [N,C,C], 255 = the pixel counts) and what the run found."""

    keep: np.ndarray
    hidden_share: float  # mean share of the face region marked hidden (over readable faces)
    unreadable: int  # faces the network could not read (taken as fully visible)
    computed: int  # maps computed now (the rest came from the cache)


class MapSource:
    """Visible-face maps of 256 px aligned crops, from the cache or the network (loaded only on a miss)."""

    def __init__(self, weights: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None,
                 loader: Callable[[Path | None], Any] | None = None) -> None:
        from facedub.convert import occlusion as occ_mod
        from facedub.fileio import sha256_file

        self.weights = Path(weights) if weights is not None else occ_mod.WEIGHTS
        if not self.weights.is_file():
            from facedub.errors import ModelMismatch

            raise ModelMismatch(f"{self.weights}: occlusion weights not found (reinstall facedub, or use --occlusion off)")
        self.weights_sha = sha256_file(self.weights)
        self.folder = Path(cache) if cache is not None else cache_root()
        self.folder = self.folder / self.weights_sha[:16]
        self._loader = loader or occ_mod.load_occlusion
        self._model: Any = None
        self.computed = 0

    def model(self) -> Any:
        if self._model is None:
            import torch

            with torch.random.fork_rng(devices=[]):  # building the net must not move the training seed's stream
                self._model = self._loader(self.weights)
        return self._model

    def visible_maps(self, crops: Sequence[np.ndarray], keys: Sequence[str]) -> list[np.ndarray]:
        """float32 visible-face maps, one per crop; ``keys`` are the crops' sha256 (the cache names)."""
        from facedub.convert import occlusion as occ_mod

        out: list[np.ndarray | None] = [self._read(k) for k in keys]
        missing = [i for i, m in enumerate(out) if m is None]
        if missing:
            model = self.model()
            for start in range(0, len(missing), 64):
                chunk = missing[start : start + 64]
                batch = np.stack([self.inputs(model, crops[i]) for i in chunk])
                vis = model(batch)
                for i, v in zip(chunk, vis):
                    q = np.clip(np.asarray(v, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
                    self._write(keys[i], q)
                    out[i] = q.astype(np.float32) / 255.0  # the cached value, so a hit and a miss agree exactly
                    self.computed += 1
        return [m for m in out if m is not None]

    @staticmethod
    def inputs(model: Any, crop: np.ndarray) -> np.ndarray:
        """The network's input for a stored aligned crop (any side; 256 px is the crop's geometry)."""
        from facedub.convert import occlusion as occ_mod

        crop = np.asarray(crop)[..., :3]
        k = occ_mod.CROP_SIZE / crop.shape[1]
        return occ_mod.seg_input(crop, np.array([[k, 0.0, 0.0], [0.0, k, 0.0]]), model.size, model.coverage)[0]

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.png"

    def _read(self, key: str) -> np.ndarray | None:
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            from PIL import Image

            with Image.open(p) as im:
                a = np.asarray(im.convert("L"), np.uint8)
        except (OSError, ValueError):
            return None  # a damaged cache entry is computed again
        return a.astype(np.float32) / 255.0

    def _write(self, key: str, q: np.ndarray) -> None:
        from facedub.fileio import write_png

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_png(self._path(key), q)
        except OSError:
            pass  # a read-only cache only costs time


def keep_mask(visible: np.ndarray, lm_crop: np.ndarray, ctx: int, ctx_cov: float, crop_size: int = 256) -> tuple[np.ndarray, float | None]:
    """(uint8 ctx×ctx keep mask, hidden share of the face region or None when unreadable) from a
    visible-face map of a 256 px aligned crop and its 68 landmarks in crop pixels.

    Hidden = the network's face region minus what it calls visible; it is resampled into the
    training context as the face image is cut (``crop_to_model``): a context pixel that holds
    any part of a map pixel hidden by ``HIDDEN_FROM`` or more, and its eight neighbours, get 0."""
    import cv2

    from facedub.convert import occlusion as occ_mod
    from facedub.faces.align import crop_to_model, face_outline, transform_points

    s = visible.shape[0]
    k = occ_mod.CROP_SIZE / crop_size  # the stored crop's pixels → the 256 px crop the network's geometry is defined on
    to_seg = occ_mod.seg_matrix(np.array([[k, 0.0, 0.0], [0.0, k, 0.0]]), s, occ_mod.SEG_COVERAGE)
    lm256 = np.asarray(lm_crop, np.float64) * k
    if not occ_mod.readable(visible, transform_points(face_outline(lm256, occ_mod.FACE_FOREHEAD), to_seg)):
        return np.full((ctx, ctx), 255, np.uint8), None
    face = occ_mod.face_target(lm256, s, occ_mod.SEG_COVERAGE)
    hidden = np.clip(face * (1.0 - visible), 0.0, 1.0)
    share = float(hidden.sum() / max(face.sum(), 1e-6))
    # Hidden at the crop's resolution (a map pixel reaches as far as its linear interpolation),
    # then cut to the context exactly as the face image is (area filter): a context pixel that
    # holds any of the occluder's colour is hidden ...
    hid_crop = cv2.warpAffine((hidden >= HIDDEN_FROM).astype(np.float32), to_seg, (crop_size, crop_size),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    h_ctx = crop_to_model((hid_crop > 0.01).astype(np.float32), ctx_cov, ctx)
    # ... and grown by one pixel: the augmentation resamples image and mask bilinearly from 2×2
    # blocks, so a pixel that takes any colour from a hidden pixel takes a keep of exactly 0 with it.
    hid = cv2.dilate((h_ctx > 1e-4).astype(np.uint8), np.ones((3, 3), np.uint8))
    return np.where(hid > 0, 0, 255).astype(np.uint8), share


def keep_masks(
    crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], keys: Sequence[str], ctx: int, ctx_cov: float, source: MapSource
) -> KeepMasks:
    """Keep masks of one identity's crops (see :func:`keep_mask`)."""
    before = source.computed
    maps = source.visible_maps(crops, keys)
    keep = np.empty((len(crops), ctx, ctx), np.uint8)
    shares: list[float] = []
    unreadable = 0
    for i, (v, lm) in enumerate(zip(maps, landmarks)):
        keep[i], share = keep_mask(v, np.asarray(lm, np.float64), ctx, ctx_cov, np.asarray(crops[i]).shape[1])
        if share is None:
            unreadable += 1
        else:
            shares.append(share)
    return KeepMasks(keep, float(np.mean(shares)) if shares else 0.0, unreadable, source.computed - before)
