"""Training data: both facesets preloaded as small uint8 tensors, augmented a batch at a time.

Each face is cut once, at load time, with :func:`facedub.faces.align.crop_to_model` to a
*context* image a little larger than the model input (``size + 2·margin`` pixels covering
``coverage·(size + 2·margin)/size`` of the crop), together with two landmark masks (the face
hull, and eyes + mouth, from the landmarks mapped with ``crop_to_model_matrix``, the matrix
convert pastes with). The model square's place in the context is :func:`context_view`, built
from the same matrix, so an unaugmented view is exactly convert's model input. A training batch is then made in a handful of vectorised torch ops:

* colour: with probability ``colour_match`` a face takes the colour mean/std (YCbCr, over the
  face hull) of a random face of the *other* identity (so the model learns shape, not
  skin-tone drift), plus a small lightness/contrast/tint jitter;
* geometry: one random similarity (rotation, zoom, shift) and horizontal flip per face,
  applied through ``affine_grid``/``grid_sample`` to image and masks alike (the *target*);
* the 2018 random warp: a 5×5 grid of control points jittered by ``warp_sigma`` of the side,
  interpolated bicubically over the face and added to the same sampling grid (the *input*).

With occlusion on (:mod:`facedub.train.occlusion`) a sixth channel, the keep mask (0 where
the occlusion network finds the face hidden), is cut and augmented with the target, and the
colour statistics are taken over the visible face only.

No per-sample Python runs in the hot loop. The random state is one ``torch.Generator`` plus a
shuffled order per identity, all of which the checkpoint stores so ``--resume`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facedub.errors import BadInput
from facedub.faces.align import (
    CROP_SIZE,
    LM68_LEFT_EYE,
    LM68_MOUTH,
    LM68_RIGHT_EYE,
    crop_to_model,
    crop_to_model_matrix,
    face_outline,
    transform_points,
)
from facedub.faceset import Faceset
from facedub.faceset.store import faceset_dir, load_crop
from facedub.train.config import AugmentConfig

from facedub.train.config import MIN_FACES  # noqa: E402,F401  (re-exported)
MIN_VAL = 2  # validation faces per identity, at least
MAX_VAL = 64  # validation faces per identity, at most


# --- colour space ---------------------------------------------------------------------------
# Colour statistics are matched in YCbCr (BT.601, on gamma-encoded values): a linear space,
# so matching per-channel mean/std and the jitter together are one 3×3 matrix and an offset
# per face, applied after the geometric sampling (sampling is linear too, so the order does not
# matter) — two small batched matrix products instead of a per-pixel non-linear LAB round trip.

_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_INV = torch.linalg.inv(_YCC)


def colour_stats(rgb: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image YCbCr mean and std over ``mask`` (>0.5): two [B,3] tensors (RGB in [0,1])."""
    ycc = torch.einsum("ij,bjhw->bihw", _YCC.to(rgb), rgb)
    w = (mask > 0.5).to(ycc)
    n = w.sum((2, 3)).clamp_min(1.0)
    mean = (ycc * w).sum((2, 3)) / n
    var = (((ycc - mean[:, :, None, None]) ** 2) * w).sum((2, 3)) / n
    return mean, var.sqrt().clamp_min(0.01)


def apply_colour(rgb: torch.Tensor, a: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``a[b] @ rgb + bias[b]`` per pixel: [B,3,H,W] with a [B,3,3], bias [B,3]."""
    return (torch.einsum("bij,bjhw->bihw", a, rgb) + bias[:, :, None, None]).clamp_(0, 1)


# --- loading ---------------------------------------------------------------------------------


def face_masks(lm_ctx: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Face-hull and eyes+mouth masks (uint8 0/255, side×side) from 68 landmarks in context px."""
    import cv2

    hull = np.zeros((side, side), np.uint8)
    pts = lm_ctx.astype(np.float64).copy()
    allp = face_outline(pts, 0.2)  # with the forehead
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(allp).astype(np.int32)), 255)
    em = np.zeros((side, side), np.uint8)
    for idx, grow in ((LM68_RIGHT_EYE, 1.8), (LM68_LEFT_EYE, 1.8), (LM68_MOUTH, 1.25)):
        p = pts[idx]
        c = p.mean(0)
        p = c + (p - c) * grow
        cv2.fillConvexPoly(em, cv2.convexHull(np.round(p).astype(np.int32)), 255)
    return hull, em


@dataclass
class IdentityData:
    """One identity: training context images and validation model inputs."""

    name: str  # "source" | "target"
    faceset: Faceset
    folder: Path
    train: torch.Tensor  # uint8 [N,5,C,C]: RGB + face hull + eyes/mouth (+ keep mask with occlusion: [N,6,C,C]), context size C
    val: torch.Tensor  # uint8 [V,5 or 6,S,S]: unaugmented model inputs + masks
    col_mean: torch.Tensor  # [N,3] per-face YCbCr mean over the face hull
    col_std: torch.Tensor  # [N,3] per-face YCbCr std over the face hull
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    # Where the model input lies in a context image: (scale, offset) of the normalised map
    # model → context (``context_view``); None = the centred size/C square.
    view: tuple[float, float] | None = None
    # With occlusion on: what the network found (mean hidden share of the face region over the
    # faces it could read, faces it could not read, maps computed now rather than cached).
    occlusion: dict[str, Any] | None = None


def geometry(size: int, coverage: float) -> tuple[int, float]:
    """Context side in px and its coverage of the crop (a margin of size/8 on each side when possible)."""
    margin = size // 8
    while margin > 0 and coverage * (size + 2 * margin) / size > 1.0:
        margin -= 1
    ctx = size + 2 * margin
    return ctx, coverage * ctx / size


def context_view(size: int, coverage: float, ctx: int, ctx_cov: float, crop_size: int = CROP_SIZE) -> tuple[float, float]:
    """(scale, offset) of ``affine_grid``'s normalised map from the model input (S px) to the
    context image (C px), exact: the inverse of ``crop_to_model_matrix(ctx_cov, ctx)`` followed
    by ``crop_to_model_matrix(coverage, size)`` — the same crop → model geometry convert uses,
    so an unaugmented training view is convert's model input, landmarks and masks included,
    even where ``inner_cut`` rounds the context and the model square differently.
    """
    mc = crop_to_model_matrix(ctx_cov, ctx, crop_size)
    mm = crop_to_model_matrix(coverage, size, crop_size)
    s = mm[0, 0] / mc[0, 0]  # model px = s · context px + t
    t = mm[0, 2] - s * mc[0, 2]
    return size / (s * ctx), ((size - 1 - 2 * t) / s + 1) / ctx - 1


def split_indices(n: int) -> tuple[list[int], list[int]]:
    """Hold out ~10% (2–64) faces, evenly spread over the set, for validation."""
    v = max(MIN_VAL, min(MAX_VAL, n // 10))
    val = sorted({int(round(x)) for x in np.linspace(n / (2 * v), n - 1 - n / (2 * v), v)})
    vs = set(val)
    return [i for i in range(n) if i not in vs], val


def check_faceset(fs: Faceset, path: str, name: str) -> None:
    n = len(fs.faces)
    if n == 0:
        raise BadInput(f"{path}: the {name} faceset has no faces")
    if n < MIN_FACES:
        raise BadInput(f"{path}: the {name} faceset has {n} faces; training needs at least {MIN_FACES} (a few hundred is better)")


def load_identity(name: str, fs: Faceset, path: str | Path, size: int, coverage: float, occlusion: Any = None) -> IdentityData:
    """One identity's faces cut for a ``size`` px model at ``coverage``. With ``occlusion`` (a
    :class:`facedub.train.occlusion.MapSource`) each face gets a 6th channel, the keep mask:
    0 where the occlusion network finds the face hidden (those pixels carry no loss)."""
    folder = faceset_dir(path)
    ctx, ctx_cov = geometry(size, coverage)
    margin = (ctx - size) // 2
    n = len(fs.faces)
    arr = np.empty((n, 6 if occlusion is not None else 5, ctx, ctx), np.uint8)
    pending: list[tuple[int, np.ndarray, np.ndarray, str]] = []
    stats = {"hidden_share": [], "unreadable": 0, "computed": 0}

    def flush() -> None:
        from facedub.train.occlusion import keep_masks

        if not pending:
            return
        km = keep_masks([p[1] for p in pending], [p[2] for p in pending], [p[3] for p in pending], ctx, ctx_cov, occlusion)
        for (j, *_), k in zip(pending, km.keep):
            arr[j, 5] = k
        readable = len(pending) - km.unreadable
        stats["hidden_share"].append((km.hidden_share, readable))
        stats["unreadable"] += km.unreadable
        stats["computed"] += km.computed
        pending.clear()

    for i, rec in enumerate(fs.faces):
        try:
            crop = load_crop(folder, rec.file)
        except (OSError, ValueError) as e:
            raise BadInput(f"{folder / rec.file}: cannot read face crop ({str(e).splitlines()[0]})") from None
        if crop.ndim != 3 or crop.shape[0] != crop.shape[1]:
            raise BadInput(f"{folder / rec.file}: not a square RGB crop")
        img = crop_to_model(crop, ctx_cov, ctx)
        m = crop_to_model_matrix(ctx_cov, ctx, crop.shape[1])
        try:
            lm_crop = transform_points(rec.landmarks_array(), rec.affine_array())
            lm = transform_points(lm_crop, m)
        except ValueError:
            raise BadInput(f"{folder}: face {rec.file} has malformed landmarks or affine") from None
        if lm.shape != (68, 2):
            raise BadInput(f"{folder}: face {rec.file} has {len(lm)} landmarks, expected 68")
        hull, em = face_masks(lm, ctx)
        arr[i, :3] = img.transpose(2, 0, 1)
        arr[i, 3] = hull
        arr[i, 4] = em
        if occlusion is not None:
            from facedub.fileio import sha256_file

            pending.append((i, crop, lm_crop, sha256_file(folder / rec.file)))
            if len(pending) >= 64:
                flush()
    if occlusion is not None:
        flush()
    t = torch.from_numpy(arr)
    tr, va = split_indices(n)
    train = t[tr].contiguous()
    view = context_view(size, coverage, ctx, ctx_cov)
    if abs(view[0] - size / ctx) < 1e-9 and abs(view[1]) < 1e-9:
        val = t[va][:, :, margin : margin + size, margin : margin + size].contiguous()
    else:  # the rounded context is off the model square by a fraction of a pixel: resample exactly
        theta = torch.tensor([[view[0], 0.0, view[1]], [0.0, view[0], view[1]]], dtype=torch.float32).expand(len(va), 2, 3)
        v = t[va].float()
        grid = F.affine_grid(theta, [len(va), v.shape[1], size, size], align_corners=False)
        val = F.grid_sample(v, grid, mode="bilinear", padding_mode="reflection", align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
    face = train[:, 3:4].float() / 255
    if train.shape[1] > 5:  # occlusion on: the colour statistics of the visible face only
        face = face * (train[:, 5:6].float() / 255)
    mean, std = colour_stats(train[:, :3].float() / 255, face)
    files = [f.file for f in fs.faces]
    occ_stats = None
    if occlusion is not None:
        w = sum(r for _, r in stats["hidden_share"])
        share = sum(h * r for h, r in stats["hidden_share"]) / w if w else 0.0
        occ_stats = {"hidden_share": round(share, 4), "unreadable": stats["unreadable"], "computed": stats["computed"], "faces": n}
    return IdentityData(
        name, fs, folder, train, val, mean, std, tuple(files[i] for i in tr), tuple(files[i] for i in va), view, occ_stats
    )


# --- batches ---------------------------------------------------------------------------------


class Sampler:
    """Shuffled passes over each identity's training faces, driven by one generator."""

    def __init__(self, sizes: dict[str, int], seed: int) -> None:
        self.gen = torch.Generator().manual_seed(int(seed))
        self.sizes = dict(sizes)
        self.perm = {k: torch.randperm(n, generator=self.gen) for k, n in self.sizes.items()}
        self.cursor = {k: 0 for k in self.sizes}

    def take(self, side: str, b: int) -> torch.Tensor:
        out = []
        while b > 0:
            n = self.sizes[side]
            if self.cursor[side] >= n:
                self.perm[side] = torch.randperm(n, generator=self.gen)
                self.cursor[side] = 0
            k = min(b, n - self.cursor[side])
            out.append(self.perm[side][self.cursor[side] : self.cursor[side] + k])
            self.cursor[side] += k
            b -= k
        return torch.cat(out)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {"sampler.gen": self.gen.get_state()}
        tensors.update({f"sampler.perm.{k}": v.clone() for k, v in self.perm.items()})
        return tensors, {"cursor": dict(self.cursor), "sizes": dict(self.sizes)}

    def load_state(self, tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
        if js.get("sizes") != self.sizes:
            raise BadInput("training state does not fit these facesets (face counts differ)")
        self.gen.set_state(tensors["sampler.gen"])
        for k in self.sizes:
            self.perm[k] = tensors[f"sampler.perm.{k}"].clone()
        self.cursor = {k: int(v) for k, v in js["cursor"].items()}


def _uniform(gen: torch.Generator, b: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(b, generator=gen) * (hi - lo) + lo


def make_batch(
    data: IdentityData,
    other: IdentityData,
    idx: torch.Tensor,
    size: int,
    aug: AugmentConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch: (warped input, target, face-hull mask, eyes/mouth mask), float [B,·,S,S].

    All randomness comes from ``gen`` in a fixed order, so a batch is reproducible.
    """
    return training_batch(data, other, idx, size, aug, gen)[:4]  # type: ignore[return-value]


def training_batch(
    data: IdentityData,
    other: IdentityData,
    idx: torch.Tensor,
    size: int,
    aug: AugmentConfig,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`make_batch` and the keep mask [B,1,S,S] moved with the target (None without
    occlusion): the same random draws, so turning occlusion on does not change the batches."""
    x = data.train[idx].float().div_(255.0)
    b, _, c, _ = x.shape
    # Random draws first, always all of them, so the stream does not depend on the settings.
    r_match = torch.rand(b, generator=gen)
    r_other = torch.randint(0, other.train.shape[0], (b,), generator=gen)
    r_light = _uniform(gen, b, -1.0, 1.0)
    r_contrast = _uniform(gen, b, -1.0, 1.0)
    r_tint = _uniform(gen, 2 * b, -1.0, 1.0).view(b, 2)
    r_rot = _uniform(gen, b, -1.0, 1.0)
    r_zoom = _uniform(gen, b, -1.0, 1.0)
    r_shift = _uniform(gen, 2 * b, -1.0, 1.0).view(b, 2)
    r_flip = torch.rand(b, generator=gen) < 0.5
    r_warp = torch.randn(b, 2, 5, 5, generator=gen)

    # Colour: one affine map per face in YCbCr, turned into an RGB matrix + offset.
    colour = None
    if aug.colour_match > 0 or aug.colour:
        use = (r_match < aug.colour_match).float()[:, None] if aug.colour_match > 0 else torch.zeros(b, 1)
        m_s, s_s = data.col_mean[idx], data.col_std[idx]
        m_o, s_o = other.col_mean[r_other], other.col_std[r_other]
        gain = 1 + use * (s_o / s_s - 1)  # [B,3]
        shift = use * (m_o - m_s * s_o / s_s)
        if aug.colour:
            con = 1 + 0.1 * r_contrast
            mu = m_s[:, 0] * gain[:, 0] + shift[:, 0]  # luma mean after matching
            gain = gain * torch.stack([con, torch.ones(b), torch.ones(b)], 1)
            shift = shift + torch.stack([(1 - con) * mu + 0.03 * r_light, 0.015 * r_tint[:, 0], 0.015 * r_tint[:, 1]], 1)
        ycc, inv = _YCC.to(x), _YCC_INV.to(x)
        a = inv @ torch.diag_embed(gain) @ ycc  # [B,3,3]
        bias = torch.einsum("ij,bj->bi", inv, shift)
        colour = (a, bias)

    # Geometry: output pixel (normalised over S) → context coordinates (normalised over C),
    # around the model square's exact place in the context (``context_view``).
    k, off = data.view if data.view is not None else (size / c, 0.0)
    ang = torch.deg2rad(r_rot * aug.rotate_deg)
    sc = 1.0 + r_zoom * aug.zoom
    flip = torch.where(r_flip & aug.flip, -1.0, 1.0)
    cos, sin = torch.cos(ang) * sc * k, torch.sin(ang) * sc * k
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * flip
    theta[:, 1, 1] = cos
    theta[:, :, 2] = r_shift * aug.shift * 2 * k + off
    grid = F.affine_grid(theta, [b, 5, size, size], align_corners=False)
    target = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if aug.warp:
        disp = r_warp * (aug.warp_sigma * 2 * k)
        disp = F.interpolate(disp, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
        inp = F.grid_sample(x[:, :3], grid + disp, mode="bilinear", padding_mode="reflection", align_corners=False)
    else:
        inp = target[:, :3]
    tgt = target[:, :3]
    if colour is not None:
        inp, tgt = apply_colour(inp, *colour), apply_colour(tgt, *colour)
    keep = target[:, 5:6] if target.shape[1] > 5 else None
    return inp.clamp(0, 1), tgt.clamp(0, 1), target[:, 3:4], target[:, 4:5], keep


def val_batch(data: IdentityData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validation inputs (= targets), face-hull and eyes/mouth masks, float [V,·,S,S]."""
    v = data.val.float() / 255.0
    return v[:, :3], v[:, 3:4], v[:, 4:5]


def val_keep(data: IdentityData) -> torch.Tensor | None:
    """The validation faces' keep masks, float [V,1,S,S] (None without occlusion)."""
    return data.val[:, 5:6].float() / 255.0 if data.val.shape[1] > 5 else None
