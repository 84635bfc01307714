"""Detail stage: a small per-identity network that turns the decoder's soft face into a sharper,
larger one, trained on that identity's own faceset.

The swap model decodes a low-resolution face (80 px for ``lite``) that convert then scales up
several times to fill the face in the frame, so the pasted face is a blur next to the plate.
Generic face restorers are known to change who a face looks like; this stage instead learns
to undo exactly *this* decoder's blur for exactly *this* person:

* inputs: the decoder's reconstruction of each crop of the identity's faceset
  (``net(crop_to_model(crop, S), side)``, S×S);
* targets: the same part of the same crop cut at ``scale``·S (the geometry of
  ``crop_to_model``, so the two line up pixel for pixel);
* the network predicts a residual over a bilinear upscale (its last layer starts at zero, so
  an untrained stage is a plain bilinear upscale) from features computed at S×S and
  pixel-shuffled up, which keeps it cheap (≈0.3 GFLOP a face at S = 80, scale 2);
* loss: L1 plus L1 of the high-frequency band (image − Gaussian blur), weighted, so the
  network is paid for edges and texture and not only for the average colour;
* the input is sometimes blurred a little more (augmentation), because a swapped face — the
  source decoder fed a target face — is a little softer than a reconstruction.

Files in the model folder: ``detail-<side>.safetensors`` and ``detail-<side>.json`` (format,
config, the SHA-256 of the swap model's weights it was trained against, the detail file's own
SHA-256, steps, seconds and validation losses). A model trained further afterwards no longer
matches, and convert then skips the stage with a note instead of using a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from facedub.errors import BadInput
from facedub.progress import NullReporter, Reporter

FORMAT = "facedub-detail"
FORMAT_VERSION = 1
SIDES = ("source", "target")


@dataclass(frozen=True)
class DetailConfig:
    scale: int = 2  # output side = model size × scale (2: lite's 80 px face becomes 160 px)
    channels: int = 32  # feature channels at the model's resolution
    blocks: int = 4  # residual blocks (two 3×3 convolutions each)
    batch: int = 16  # faces per step
    lr: float = 1e-3  # Adam learning rate, cosine-decayed to 5 % over the run
    hf_weight: float = 2.0  # weight of the L1 on the high-frequency band against the plain L1
    extra_blur: float = 0.5  # probability that a training input is blurred a little more (σ up to 0.8 px)
    val_faces: int = 32  # held-out faces (evenly spread) for the validation loss
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scale not in (1, 2, 3, 4):
            raise BadInput(f"detail: scale must be 1, 2, 3 or 4, got {self.scale}")
        if not 4 <= self.channels <= 256:
            raise BadInput(f"detail: channels must be between 4 and 256, got {self.channels}")
        if not 0 <= self.blocks <= 32:
            raise BadInput(f"detail: blocks must be between 0 and 32, got {self.blocks}")
        if self.batch < 1:
            raise BadInput(f"detail: batch must be at least 1, got {self.batch}")
        if not 0 < self.lr < 1:
            raise BadInput(f"detail: lr must be in (0, 1), got {self.lr}")
        if self.hf_weight < 0 or not 0 <= self.extra_blur <= 1:
            raise BadInput("detail: hf_weight must be >= 0 and extra_blur in [0, 1]")


def _torch() -> Any:
    import torch

    return torch


def build_net(config: DetailConfig) -> Any:
    """The detail network for ``config`` (a ``torch.nn.Module``)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class _Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.a = nn.Conv2d(c, c, 3, padding=1)
            self.b = nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x: Any) -> Any:
            return x + self.b(F.leaky_relu(self.a(x), 0.1))

    class DetailNet(nn.Module):
        def __init__(self, cfg: DetailConfig) -> None:
            super().__init__()
            self.scale = cfg.scale
            c = cfg.channels
            self.head = nn.Conv2d(3, c, 3, padding=1)
            self.body = nn.Sequential(*[_Block(c) for _ in range(cfg.blocks)])
            self.tail = nn.Conv2d(c, 3 * cfg.scale * cfg.scale, 3, padding=1)
            self.shuffle = nn.PixelShuffle(cfg.scale)
            # Starts as a plain bilinear upscale: the residual is zero until it has learned something.
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

        def forward(self, x: Any) -> Any:  # x: B×3×S×S in [0, 1]
            base = x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
            f = F.leaky_relu(self.head(x), 0.1)
            f = f + self.body(f)
            return base + self.shuffle(self.tail(f))

    return DetailNet(config)


def high_pass(x: Any, sigma: float = 1.0) -> Any:
    """x − Gaussian blur of x (per channel, reflect padding): the band the decoder loses."""
    torch = _torch()
    F = torch.nn.functional
    r = max(1, int(round(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    kh = k.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    kv = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(F.conv2d(y, kh, groups=c), kv, groups=c)
    return x - y


def detail_loss(out: Any, target: Any, hf_weight: float) -> Any:
    """L1 + ``hf_weight`` × L1 of the high-frequency bands."""
    torch = _torch()
    loss = torch.mean(torch.abs(out - target))
    if hf_weight > 0:
        loss = loss + hf_weight * torch.mean(torch.abs(high_pass(out) - high_pass(target)))
    return loss


def _blur_batch(x: Any, gen: Any, p: float) -> Any:
    """Blur a random share ``p`` of the batch by a random σ in (0.3, 0.8) px (the swap's extra softness)."""
    torch = _torch()
    if p <= 0:
        return x
    pick = torch.rand(x.shape[0], generator=gen) < p
    if not bool(pick.any()):
        return x
    sigma = 0.3 + 0.5 * float(torch.rand(1, generator=gen))
    y = x.clone()
    y[pick] = x[pick] - high_pass(x[pick], sigma)
    return y


# --- data ------------------------------------------------------------------------------------


@dataclass
class DetailData:
    inputs: Any  # uint8 N×3×S×S: the decoder's reconstructions
    targets: Any  # uint8 N×3×kS×kS: the crops at the output size
    train_idx: list[int]
    val_idx: list[int]


def build_data(model: Any, faceset_path: str | os.PathLike[str], side: str, scale: int, val_faces: int = 32, batch: int = 32, reporter: Reporter | None = None) -> DetailData:
    """Run the swap model over every crop of the faceset (decoder ``side``) and cut the targets."""
    torch = _torch()
    from facedub.faces.align import crop_to_model
    from facedub.faceset.store import faceset_dir, load_crop, load_faceset

    reporter = reporter or NullReporter()
    fs = load_faceset(faceset_path)
    folder = faceset_dir(faceset_path)
    n = len(fs.faces)
    if n < 8:
        raise BadInput(f"{folder}: the detail stage needs at least 8 faces, the faceset has {n}")
    size, cov = int(model.config.size), float(model.config.coverage)
    xs = np.empty((n, size, size, 3), np.uint8)
    ys = np.empty((n, size * scale, size * scale, 3), np.uint8)
    for i, rec in enumerate(fs.faces):
        try:
            crop = load_crop(folder, rec.file)
        except (OSError, ValueError) as e:
            raise BadInput(f"{folder / rec.file}: cannot read face crop ({str(e).splitlines()[0]})") from None
        xs[i] = crop_to_model(crop, cov, size)
        ys[i] = crop_to_model(crop, cov, size * scale)
    recon = np.empty_like(xs)
    net = model.net
    device = next(net.parameters()).device
    reporter.start("detail: decoding the faceset", total=n, unit="face")
    with torch.inference_mode():
        for s in range(0, n, batch):
            x = torch.from_numpy(xs[s : s + batch]).to(device).permute(0, 3, 1, 2).float().div_(255.0)
            rgb, _ = net(x, side)
            recon[s : s + batch] = rgb.float().clamp(0, 1).mul(255).add_(0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            reporter.advance(min(batch, n - s))
    reporter.finish()
    v = max(1, min(val_faces, n // 5))
    val = sorted({int(round(t)) for t in np.linspace(0, n - 1, v)})
    vs = set(val)
    return DetailData(
        torch.from_numpy(recon).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(ys).permute(0, 3, 1, 2).contiguous(),
        [i for i in range(n) if i not in vs],
        val,
    )


# --- training --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetailResult:
    steps: int
    seconds: float
    val_l1_bilinear: float  # validation L1 (0–255 levels) of a plain bilinear upscale
    val_l1: float  # validation L1 of the trained stage
    val_hf_bilinear: float  # mean |high-frequency band| error of bilinear, levels
    val_hf: float  # the same for the trained stage
    path: str


def _val(net: Any, data: DetailData, batch: int = 32) -> tuple[float, float]:
    torch = _torch()
    l1 = hf = 0.0
    idx = data.val_idx
    with torch.inference_mode():
        for s in range(0, len(idx), batch):
            sel = idx[s : s + batch]
            x = data.inputs[sel].float() / 255
            y = data.targets[sel].float() / 255
            out = net(x).clamp(0, 1)
            l1 += float(torch.abs(out - y).mean()) * len(sel)
            hf += float(torch.abs(high_pass(out) - high_pass(y)).mean()) * len(sel)
    return 255 * l1 / len(idx), 255 * hf / len(idx)


def train_detail(
    model: Any,
    faceset_path: str | os.PathLike[str],
    *,
    side: str = "source",
    config: DetailConfig | None = None,
    minutes: float | None = 5.0,
    steps: int | None = None,
    reporter: Reporter | None = None,
    save: bool = True,
) -> DetailResult:
    """Train the detail stage of ``model`` (a loaded model or a folder) for decoder ``side``.

    Stops after ``steps`` steps or ``minutes`` of wall time, whichever comes first (at least one
    of them must be given), then writes ``detail-<side>.*`` into the model folder.
    """
    torch = _torch()
    config = config or DetailConfig()
    reporter = reporter or NullReporter()
    if side not in SIDES:
        raise BadInput(f"detail: side must be one of {', '.join(SIDES)}, got {side!r}")
    if minutes is None and steps is None:
        raise BadInput("detail: give a number of minutes or of steps")
    if minutes is not None and minutes <= 0:
        raise BadInput(f"detail: minutes must be more than 0, got {minutes}")
    if steps is not None and steps < 1:
        raise BadInput(f"detail: steps must be at least 1, got {steps}")
    from facedub.convert.runner import load_convert_model

    loaded = load_convert_model(model)
    data = build_data(loaded, faceset_path, side, config.scale, config.val_faces, reporter=reporter)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    net = build_net(config)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    base_l1, base_hf = _val(net, data)  # the zero-initialised stage is a bilinear upscale
    budget = None if minutes is None else minutes * 60.0
    horizon = steps if steps is not None else None
    train_idx = torch.tensor(data.train_idx)
    t0 = time.perf_counter()
    reporter.start("detail: training", total=steps, unit="step")
    step = 0
    while True:
        elapsed = time.perf_counter() - t0
        if steps is not None and step >= steps:
            break
        if budget is not None and elapsed >= budget:
            break
        if reporter.should_stop():
            break
        # Cosine decay over the run's horizon (steps, or the share of the time budget used).
        frac = step / horizon if horizon else min(1.0, elapsed / budget) if budget else 0.0
        for g in opt.param_groups:
            g["lr"] = config.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
        sel = train_idx[torch.randint(len(train_idx), (config.batch,), generator=gen)]
        x = data.inputs[sel].float() / 255
        y = data.targets[sel].float() / 255
        if bool(torch.rand(1, generator=gen) < 0.5):
            x, y = x.flip(-1), y.flip(-1)
        x = _blur_batch(x, gen, config.extra_blur)
        loss = detail_loss(net(x), y, config.hf_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        reporter.advance(1, loss=round(float(loss.detach()), 4))
    reporter.finish()
    seconds = time.perf_counter() - t0
    net.eval()
    l1, hf = _val(net, data)
    folder = Path(loaded.folder)
    path = folder / f"detail-{side}.safetensors"
    result = DetailResult(step, round(seconds, 1), round(base_l1, 3), round(l1, 3), round(base_hf, 3), round(hf, 3), str(path))
    if save:
        _save(net, config, loaded, side, result)
    reporter.note(
        f"detail stage ({side}): {step} steps in {seconds / 60:.1f} min; validation error {l1:.2f} levels "
        f"(bilinear {base_l1:.2f}), high-frequency error {hf:.2f} (bilinear {base_hf:.2f})"
    )
    return result


def _weights_sha(loaded: Any) -> str:
    from facedub.model.checkpoint import WEIGHTS

    return str(loaded.meta.get("files", {}).get(WEIGHTS, ""))


def _save(net: Any, config: DetailConfig, loaded: Any, side: str, result: DetailResult) -> None:
    from safetensors.torch import save

    from facedub.fileio import write_bytes, write_json

    folder = Path(loaded.folder)
    data = save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    write_bytes(folder / f"detail-{side}.safetensors", data)
    write_json(
        folder / f"detail-{side}.json",
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "side": side,
            "config": asdict(config),
            "model_weights_sha256": _weights_sha(loaded),
            "sha256": hashlib.sha256(data).hexdigest(),
            "training": {k: v for k, v in asdict(result).items() if k != "path"},
        },
    )


# --- loading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetailStage:
    net: Any
    config: DetailConfig
    side: str


def load_detail(loaded: Any, side: str) -> tuple[DetailStage | None, str | None]:
    """The model's detail stage for decoder ``side``, or (None, why not) — ``why`` is None when
    the folder simply has none. A stage trained for other weights or a damaged file is skipped
    with a reason, never used."""
    torch = _torch()
    folder = getattr(loaded, "folder", None)
    if folder is None:
        return None, None
    js = Path(folder) / f"detail-{side}.json"
    st = Path(folder) / f"detail-{side}.safetensors"
    if not js.is_file():
        return None, None
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            return None, f"{js}: not a facedub detail file; detail stage skipped"
        if meta.get("model_weights_sha256") != _weights_sha(loaded):
            return None, f"{js}: trained for an earlier state of the model; detail stage skipped (run 'facedub detail' again)"
        data = st.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return None, f"{st}: checksum does not match {js.name}; detail stage skipped"
        names = {f.name for f in fields(DetailConfig)}
        config = DetailConfig(**{k: v for k, v in meta.get("config", {}).items() if k in names})
        from safetensors.torch import load

        net = build_net(config)
        net.load_state_dict(load(data), strict=True)
    except (OSError, ValueError, TypeError, RuntimeError, BadInput) as e:
        return None, f"{js}: unreadable detail stage ({type(e).__name__}); detail stage skipped"
    device = getattr(loaded, "device", torch.device("cpu"))
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return DetailStage(net, config, side), None
