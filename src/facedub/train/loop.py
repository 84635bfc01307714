"""The training loop: ``train(config, reporter) -> TrainSummary``.

Order of work: load both facesets → the policy check (one call) → check the options and the
output folder (nothing is written before everything is known to be valid, and before the
first step ran, so a batch that does not fit memory leaves no trace) → preload the faces →
build or restore the model, optimiser and random state → steps. Every ``preview_every``
steps: validation losses and SSIM, a preview grid, the loss curve, a plateau hint; every
``save_every`` steps and at the end: a checkpoint. Ctrl-C or ``reporter.should_stop()``
finishes the current step, saves, and raises :class:`facedub.errors.Cancelled`.

Several processes (``torchrun --nproc_per_node N``) train one model with
DistributedDataParallel (gloo on CPU, NCCL on GPU); rank 0 writes all files.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import hashlib
import math
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facedub import __version__
from facedub.errors import BadInput, Cancelled, ModelMismatch
from facedub.faceset import Faceset, load_faceset
from facedub.fileio import sha256_file
from facedub.model.checkpoint import (
    MODEL_JSON,
    build_from_meta,
    config_of,
    load_optimizer_state,
    load_state,
    load_training_tensors,
    optimizer_state,
    read_meta,
    save_checkpoint,
)
from facedub.model.precision import resolve_precision
from facedub.model.registry import ARCH_NAMES, DEFAULT_ARCH, build_model, default_config, get_arch
from facedub.progress import NullReporter, Reporter
from facedub.safety import policy
from facedub.train.config import TrainConfig, TrainSummary
from facedub.train.data import IdentityData, Sampler, check_faceset, load_identity, training_batch, val_batch, val_keep
from facedub.train.losses import reconstruction_loss, ssim
from facedub.train.occlusion import OCCLUSION_MODES
from facedub.train.preview import ROWS, plateaued, write_loss_curve, write_preview
from facedub.faceset.store import faceset_dir

PREVIEW_FACES = 4  # faces per preview row
RAW_PREFIX = "raw."  # training-state tensors holding the raw weights when the saved ones are an EMA
LR_SCHEDULES = ("constant", "cosine")


def _check_policy(source_fs: Faceset, target_fs: Faceset, source_path: str, target_path: str) -> dict[str, Any]:
    """The single policy check at the start of training: two different facesets, each carrying
    a valid, unexpired consent record (``facedub.safety.policy``). Returns both records, which
    the model carries so that convert can re-check them."""
    if source_fs.id and source_fs.id == target_fs.id:
        raise BadInput(f"source and target are the same faceset ({source_fs.id}); train needs two identities")
    return policy.require_consent_for_training(source_path, target_path)  # messages name the folders


# --- small helpers ------------------------------------------------------------------------------


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def _is_oom(e: BaseException) -> bool:
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg or "not enough memory" in msg)


def _descriptor_mean(fs: Faceset) -> list[float] | None:
    ds = [f.descriptor for f in fs.faces if f.descriptor is not None]
    if not ds:
        return None
    return [float(x) for x in np.mean(np.asarray(ds, np.float64), axis=0)]


def _faceset_record(fs: Faceset, path: str, data: IdentityData) -> dict[str, Any]:
    folder = faceset_dir(path)
    js = folder / "faceset.json"
    return {
        "id": fs.id,
        "path": str(Path(path).resolve()),
        "sha256": sha256_file(js) if js.is_file() else None,
        "faces": len(fs.faces),
        "train_faces": int(data.train.shape[0]),
        "val_faces": list(data.val_files),
        **({"occlusion": data.occlusion} if data.occlusion is not None else {}),
    }


def _rng_json() -> dict[str, Any]:
    py = random.getstate()
    npst = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])],
    }


def _set_rng_json(js: dict[str, Any]) -> None:
    py = js["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = js["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))


class _Both(nn.Module):
    """What DDP wraps: one call = the training forward of both identities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, xs: torch.Tensor, xt: torch.Tensor):  # type: ignore[override]
        return self.net.forward_both(xs, xt)


@contextlib.contextmanager
def _sigint_to_flag(flag: dict[str, bool]):
    """First Ctrl-C sets ``flag['stop']`` (the step finishes and the model is saved); a second one
    interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        if flag.get("stop"):
            raise KeyboardInterrupt
        flag["stop"] = True

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --- the stage function -----------------------------------------------------------------------------


def train(config: TrainConfig, reporter: Reporter | None = None) -> TrainSummary:
    """Train (or continue training) a swap model on two facesets. See the module docstring."""
    reporter = reporter or NullReporter()
    rank, world, local_rank = _dist_env()
    if rank != 0:
        reporter = NullReporter()
    source_fs = load_faceset(config.source)
    target_fs = load_faceset(config.target)
    consent_records = _check_policy(source_fs, target_fs, config.source, config.target)
    check_faceset(source_fs, config.source, "source")
    check_faceset(target_fs, config.target, "target")
    _check_options(config)
    plan = _plan(config, source_fs, target_fs)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = choose_device(config.device, local_rank)
    amp_dtype = resolve_precision(config.precision, device)  # checked before the faces are loaded
    src, tgt = _load_data(config, source_fs, target_fs, plan.mcfg, reporter)
    run = _Run(config, plan, device, amp_dtype, src, tgt, rank, world)
    run.consent, run.source_fs, run.target_fs = consent_records, source_fs, target_fs
    if plan.meta_in:
        run.restore(plan.meta_in, plan.train_tensors)
    run.wrap_for_ranks()
    run.loop(reporter)
    return run.finish(reporter)


# --- setting up -----------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What is trained: a new model, or the one in ``out`` when resuming (checked against the facesets)."""

    out: Path
    arch: str
    mcfg: Any  # the architecture's ModelConfig
    meta_in: dict[str, Any] | None  # the saved model's meta when resuming
    train_tensors: dict[str, torch.Tensor]  # its optimiser / sampler / random state
    batch: int
    lr: float


def _plan(config: TrainConfig, source_fs: Faceset, target_fs: Faceset) -> _Plan:
    out = Path(config.out)
    meta_in: dict[str, Any] | None = None
    if config.resume:
        meta_in = read_meta(out) if (out / MODEL_JSON).exists() else None
        if meta_in is None:
            raise BadInput(f"{out}: nothing to resume (no {MODEL_JSON}); drop --resume to start a new model")
        if config.arch and config.arch != meta_in["arch"]:
            raise ModelMismatch(f"{out}: the model is a {meta_in['arch']!r} model; cannot resume it as {config.arch!r}")
        for side, fs in (("source", source_fs), ("target", target_fs)):
            was = (meta_in.get("facesets") or {}).get(side, {}).get("id")
            if was != fs.id:
                raise ModelMismatch(f"{out}: the model was trained with a different {side} faceset ({was}, now {fs.id})")
        if "training_state" not in meta_in:
            raise BadInput(f"{out}: the model has no training state to resume from")
        arch = meta_in["arch"]
        mcfg = config_of(meta_in)
        for name in ("size", "coverage", "width", "eye_mouth_weight", "hf_weight"):
            v = getattr(config, name)
            if v is not None and v != getattr(mcfg, name):
                raise ModelMismatch(f"{out}: the model was trained with {name}={getattr(mcfg, name)}; cannot resume with {v}")
        train_tensors = load_training_tensors(out, meta_in)  # verifies the checksum before any work
    else:
        if (out / MODEL_JSON).exists():
            raise BadInput(f"{out}: a model already exists here; add --resume to continue it or choose another --out")
        if out.exists() and not out.is_dir():
            raise BadInput(f"{out}: exists and is not a folder")
        arch = config.arch or DEFAULT_ARCH
        get_arch(arch)
        mcfg = default_config(
            arch, size=config.size, coverage=config.coverage, width=config.width, eye_mouth_weight=config.eye_mouth_weight, hf_weight=config.hf_weight
        )
        train_tensors = {}
    return _Plan(out, arch, mcfg, meta_in, train_tensors, int(config.batch_size or mcfg.batch_size), float(config.lr or mcfg.lr))


def choose_device(requested: str | None, local_rank: int = 0, cuda_available: bool | None = None) -> torch.device:
    """The training device: ``requested`` when given, else this rank's GPU when CUDA is present,
    else the CPU. Asking for CUDA where there is none is a one-line error."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise BadInput(f"device {requested!r}: not a device name (cpu, cuda, cuda:N)") from None
    elif cuda_available:
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if device.type == "cuda" and not cuda_available:
        raise BadInput(f"device {requested!r}: CUDA is not available here")
    return device


def _load_data(config: TrainConfig, source_fs: Faceset, target_fs: Faceset, mcfg: Any, reporter: Reporter) -> tuple[IdentityData, IdentityData]:
    occ = occlusion_source(config)
    reporter.start("load faces" if occ is None else "load faces + occlusion masks", total=2, unit="set")
    src = load_identity("source", source_fs, config.source, mcfg.size, mcfg.coverage, occ)
    reporter.advance(1)
    tgt = load_identity("target", target_fs, config.target, mcfg.size, mcfg.coverage, occ)
    reporter.advance(1)
    reporter.finish()
    if occ is not None:
        for d in (src, tgt):
            st = d.occlusion or {}
            reporter.note(
                f"occlusion ({d.name}): {100 * st.get('hidden_share', 0.0):.1f} % of the face region marked hidden on average "
                f"and left out of the loss; {st.get('unreadable', 0)} of {st.get('faces', 0)} faces unreadable (counted whole); "
                f"{st.get('computed', 0)} masks computed, the rest cached"
            )
    return src, tgt


def occlusion_source(config: TrainConfig) -> Any:
    """The occlusion maps ``config.occlusion`` asks for (None when off): the model folder's own
    ``occlusion.safetensors`` when it has one (as convert's ``auto``), else the generic network."""
    if config.occlusion == "off":
        return None
    from facedub.convert.occlusion import PROJECT_WEIGHTS
    from facedub.train.occlusion import MapSource

    own = Path(config.out) / PROJECT_WEIGHTS
    return MapSource(own if own.is_file() else None)


# --- one training run -----------------------------------------------------------------------------


class _Run:
    """The model, its optimiser and sampler, and the counters of one ``train`` call.

    ``__init__`` builds them (seeded), ``restore`` continues a saved model, ``step`` is one
    optimiser step on a batch of each identity, ``validate`` / ``preview`` / ``checkpoint`` the
    periodic work, ``loop`` the steps until the length, the clock or a stop, ``finish`` the last
    validation and checkpoint and the summary.
    """

    def __init__(
        self, config: TrainConfig, plan: _Plan, device: torch.device, amp_dtype: torch.dtype | None, src: IdentityData, tgt: IdentityData, rank: int, world: int
    ) -> None:
        self.config, self.plan, self.device, self.src, self.tgt = config, plan, device, src, tgt
        self.rank, self.world = rank, world
        self.out, self.arch, self.mcfg, self.batch, self.lr = plan.out, plan.arch, plan.mcfg, plan.batch, plan.lr
        self.amp_dtype = amp_dtype  # None = plain fp32
        self.mf = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        self.consent: dict[str, Any] = {}
        self.source_fs: Faceset | None = None
        self.target_fs: Faceset | None = None
        # Model, optimiser, random state.
        torch.manual_seed(config.seed)
        meta_in = plan.meta_in
        net = build_from_meta(meta_in) if meta_in else build_model(plan.arch, plan.mcfg)
        if meta_in:
            load_state(net, plan.out, meta_in)
        self.net = net.to(device=device, memory_format=self.mf)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, betas=(plan.mcfg.beta1, plan.mcfg.beta2))
        # With config.ema: a moving average of the weights, which validation, previews and the
        # saved weights use; the raw weights go into the training state so a resume continues them.
        self.ema_net: nn.Module | None = copy.deepcopy(self.net) if config.ema > 0 else None
        self.sampler = Sampler({"source": src.train.shape[0], "target": tgt.train.shape[0]}, config.seed + 7919 * rank)
        self.history: dict[str, list[float]] = {k: [] for k in ("step", "source", "target", "val_step", "val_source", "val_target", "val_ssim_source", "val_ssim_target")}
        self.step = 0
        self.examples = 0
        self.elapsed_before = 0.0
        self.log_acc: list[float] = [0.0, 0.0, 0]  # running sums of the training-loss history point
        self.module: nn.Module = _Both(self.net)
        self.created = (meta_in or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.model_id: str | None = (meta_in or {}).get("id")
        self.previews: list[str] = []
        self.loss_curve: str | None = None
        self.plateau_noted = bool((meta_in or {}).get("plateaued", False))
        self.session_start = time.monotonic()
        self.run = 0  # steps run in this call
        self.last_ls: float | None = None
        self.last_lt: float | None = None
        self.last_val: dict[str, float] = {}
        self.stopped = False

    def restore(self, meta_in: dict[str, Any], train_tensors: dict[str, torch.Tensor]) -> None:
        """Continue where the saved model stopped: optimiser, sampler, random state, counters, history."""
        ts = meta_in["training_state"]
        raw = {k[len(RAW_PREFIX):]: v for k, v in train_tensors.items() if k.startswith(RAW_PREFIX)}
        if raw:  # saved with EMA: the weights file holds the average, the training state the raw weights
            if self.ema_net is not None:
                self.ema_net.load_state_dict(self.net.state_dict())
            self.net.load_state_dict(raw)
        load_optimizer_state(self.opt, train_tensors, ts["optimizer"])
        for g in self.opt.param_groups:
            g["lr"] = self.lr
        if self.rank == 0:
            self.sampler.load_state(train_tensors, ts["sampler"])
        else:  # other ranks: a fresh stream that still depends on where the run is
            self.sampler = Sampler(self.sampler.sizes, self.config.seed + 7919 * self.rank + 104729 * int(meta_in.get("step", 0)))
        if "rng.torch_cpu" in train_tensors:
            torch.set_rng_state(train_tensors["rng.torch_cpu"])
        _set_rng_json(ts["rng"])
        self.log_acc[:] = list(ts.get("log_window", [0.0, 0.0, 0]))
        self.step = int(meta_in.get("step", 0))
        self.examples = int(meta_in.get("examples", 0))
        self.elapsed_before = float(meta_in.get("elapsed_s", 0.0))
        for k, v in (meta_in.get("losses") or {}).items():
            if k in self.history:
                self.history[k] = list(v)

    def wrap_for_ranks(self) -> None:
        """Several processes: DistributedDataParallel (NCCL on GPU, gloo on CPU)."""
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.module = nn.parallel.DistributedDataParallel(self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.model_id is None:
            assert self.source_fs is not None and self.target_fs is not None
            # A model's id: fixed when it is first created, so resumed training keeps it.
            self.model_id = hashlib.sha256(
                f"{self.created}|{self.arch}|{self.source_fs.id}|{self.target_fs.id}|{self.config.seed}".encode()
            ).hexdigest()[:16]
        self.session_start = time.monotonic()  # this call's clock starts with the first step

    # --- pieces ---

    def to_dev(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, non_blocking=True).contiguous(memory_format=self.mf)

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def progress(self) -> float:
        """Share of this session's length done before the current step (steps, else minutes)."""
        c = self.config
        if c.steps:
            return self.run / c.steps
        if c.minutes:
            return min(1.0, (time.monotonic() - self.session_start) / (60.0 * c.minutes))
        return 0.0

    def lr_now(self) -> float:
        """The learning rate of the current step (``lr_schedule``)."""
        c = self.config
        if c.lr_schedule != "cosine":
            return self.lr
        if self.run < c.warmup_steps:
            return self.lr * (self.run + 1) / c.warmup_steps
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * self.progress())))

    def update_ema(self) -> None:
        if self.ema_net is None:
            return
        d = min(self.config.ema, (1 + self.step) / (10 + self.step))  # a short average while the run is young
        with torch.no_grad():
            for e, p in zip(self.ema_net.state_dict().values(), self.net.state_dict().values()):
                if e.dtype.is_floating_point:
                    e.lerp_(p, 1.0 - d)
                else:
                    e.copy_(p)

    @property
    def eval_net(self) -> nn.Module:
        """The weights convert will use: the moving average when ``ema`` is on."""
        return self.ema_net if self.ema_net is not None else self.net

    def one_step(self) -> tuple[float, float]:
        """One optimiser step on a batch of each identity; returns (source loss, target loss)."""
        src, tgt, size, aug, mcfg = self.src, self.tgt, self.mcfg.size, self.config.augment, self.mcfg
        if aug.warp and aug.warp_off_share > 0 and self.progress() >= 1.0 - aug.warp_off_share:
            aug = replace(aug, warp=False)  # the random draws stay the same; only the warp is left out
        if self.config.lr_schedule != "constant":
            for g in self.opt.param_groups:
                g["lr"] = self.lr_now()
        idx_s = self.sampler.take("source", self.batch)
        idx_t = self.sampler.take("target", self.batch)
        xs, ys, fs_, es, ks = (None if t is None else self.to_dev(t) for t in training_batch(src, tgt, idx_s, size, aug, self.sampler.gen))
        xt, yt, ft, et, kt = (None if t is None else self.to_dev(t) for t in training_batch(tgt, src, idx_t, size, aug, self.sampler.gen))
        with self.autocast():
            (ps, ms), (pt, mt) = self.module(xs, xt)
        ls = reconstruction_loss(ps, ys, mcfg, es, ms, fs_, ks)
        lt = reconstruction_loss(pt, yt, mcfg, et, mt, ft, kt)
        self.opt.zero_grad(set_to_none=True)
        (ls + lt).backward()
        self.opt.step()
        self.update_ema()
        return float(ls.detach()), float(lt.detach())

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        net = self.eval_net
        net.eval()
        res: dict[str, float] = {}
        for name, data in (("source", self.src), ("target", self.tgt)):
            x, fm, em = val_batch(data)
            keep = val_keep(data)
            losses, ssims = [], []
            for i in range(0, x.shape[0], 32):
                xb, fb, eb = self.to_dev(x[i : i + 32]), self.to_dev(fm[i : i + 32]), self.to_dev(em[i : i + 32])
                kb = None if keep is None else self.to_dev(keep[i : i + 32])
                with self.autocast():
                    p, m = net(xb, name)
                losses.append(float(reconstruction_loss(p, xb, self.mcfg, eb, m, fb, kb)) * xb.shape[0])
                ssims.append(float(ssim(p.float(), xb).sum()))
            res[f"val_{name}"] = sum(losses) / x.shape[0]
            res[f"val_ssim_{name}"] = sum(ssims) / x.shape[0]
        net.train()
        return res

    def record_validation(self) -> None:
        self.last_val = self.validate()
        self.history["val_step"].append(self.step)
        for k, v in self.last_val.items():
            self.history[k].append(round(v, 6))

    @torch.no_grad()
    def preview(self, path: Path) -> None:
        net = self.eval_net
        net.eval()
        rows = []
        for face_side, dec_side in ROWS:
            data = self.src if face_side == "source" else self.tgt
            x = self.to_dev(val_batch(data)[0][:PREVIEW_FACES])
            keep = val_keep(data)  # occlusion on: the input faces show what the loss ignores
            with self.autocast():
                p, _ = net(x, dec_side)
            rows.append((f"{face_side}->{dec_side}", x.float().cpu(), p.float().cpu(), None if keep is None else keep[:PREVIEW_FACES]))
        net.train()
        write_preview(path, rows)

    def periodic_preview(self, reporter: Reporter) -> None:
        """Every ``preview_every`` steps: validation, a preview grid, the loss curve, a plateau hint."""
        out, step = self.out, self.step
        self.record_validation()
        out.mkdir(parents=True, exist_ok=True)
        (out / "previews").mkdir(exist_ok=True)
        pth = out / "previews" / f"step_{step:07d}.png"
        self.preview(pth)
        self.previews.append(str(pth))
        reporter.image(str(pth), f"preview at step {step}")
        self.loss_curve = str(out / "loss.png")
        write_loss_curve(self.loss_curve, self.history, f"{self.arch} · step {step}")
        reporter.image(self.loss_curve, "loss curve")
        vsum = [a + b for a, b in zip(self.history["val_source"], self.history["val_target"])]
        if not self.plateau_noted and plateaued(vsum):
            self.plateau_noted = True
            reporter.note(
                f"validation loss has not improved by 1% over the last 5 checks (step {step}); "
                "more training will change little — you can stop now (Ctrl-C saves the model)"
            )

    def checkpoint(self) -> None:
        """Save the model with everything ``--resume`` needs (rank 0 only)."""
        if self.rank != 0:
            return
        assert self.source_fs is not None and self.target_fs is not None
        config, amp_dtype = self.config, self.amp_dtype
        opt_t, opt_js = optimizer_state(self.opt)
        smp_t, smp_js = self.sampler.state()
        tensors = {**opt_t, **smp_t, "rng.torch_cpu": torch.get_rng_state()}
        if self.ema_net is not None:
            tensors.update({RAW_PREFIX + k: v.detach().cpu() for k, v in self.net.state_dict().items()})
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        meta = {
            "arch": self.arch,
            "summary": get_arch(self.arch).summary,
            "config": self.mcfg.to_dict(),
            "step": self.step,
            "examples": self.examples,
            "elapsed_s": round(self.elapsed_before + time.monotonic() - self.session_start, 3),
            "losses": self.history,
            "plateaued": self.plateau_noted,
            "train": {
                "batch_size": self.batch,
                "lr": self.lr,
                "seed": config.seed,
                "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
                "world_size": self.world,
                "device": self.device.type,
                "augment": asdict(config.augment),
                "occlusion": config.occlusion,
                "ema": config.ema,
                "lr_schedule": config.lr_schedule,
                "warmup_steps": config.warmup_steps,
            },
            "facesets": {
                "source": _faceset_record(self.source_fs, config.source, self.src),
                "target": _faceset_record(self.target_fs, config.target, self.tgt),
            },
            "id": self.model_id,
            "consent": self.consent,
            "source_descriptor": _descriptor_mean(self.source_fs),
            "target_descriptor": _descriptor_mean(self.target_fs),
            "training_state": {
                "optimizer": opt_js,
                "sampler": smp_js,
                "rng": _rng_json(),
                "log_window": [self.log_acc[0], self.log_acc[1], self.log_acc[2]],  # partial sums of the next history point
            },
            "created": self.created,
            "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "tool_version": __version__,
        }
        save_checkpoint(self.out, self.eval_net, meta, tensors)

    def _should_stop(self, flag: dict[str, bool], deadline: float | None, reporter: Reporter) -> bool:
        """The length, the clock or a stop request; with several ranks, all stop together."""
        if self.config.steps is not None and self.run >= self.config.steps:
            return True
        stop_here = deadline is not None and time.monotonic() >= deadline
        if flag["stop"] or reporter.should_stop():
            self.stopped = True
        if self.world > 1:
            import torch.distributed as dist

            t = torch.tensor([float(stop_here), float(self.stopped)], device=self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            stop_here, self.stopped = bool(t[0] > 0), bool(t[1] > 0)
        return stop_here or self.stopped

    def _checked_step(self) -> tuple[float, float]:
        """:meth:`one_step` with out-of-memory and divergence as one-line errors."""
        try:
            ls, lt = self.one_step()
        except RuntimeError as e:
            if _is_oom(e):
                raise BadInput(
                    f"--batch-size {self.batch} does not fit in {self.device.type} memory; try --batch-size {max(1, self.batch // 2)}"
                ) from None
            raise
        if not (math.isfinite(ls) and math.isfinite(lt)):
            raise BadInput(f"training diverged at step {self.step + 1} (loss is not finite); lower --lr (now {self.lr:g})")
        return ls, lt

    def _count(self, ls: float, lt: float) -> None:
        self.step += 1
        self.run += 1
        self.examples += 2 * self.batch * self.world
        self.log_acc[0] += ls
        self.log_acc[1] += lt
        self.log_acc[2] += 1
        if self.step % self.config.log_every == 0:
            self.history["step"].append(self.step)
            self.history["source"].append(round(self.log_acc[0] / self.log_acc[2], 6))
            self.history["target"].append(round(self.log_acc[1] / self.log_acc[2], 6))
            self.log_acc[:] = [0.0, 0.0, 0]
        self.last_ls, self.last_lt = ls, lt

    def loop(self, reporter: Reporter) -> None:
        """Steps until ``steps`` / ``minutes`` are done or a stop is asked for."""
        config = self.config
        target_steps = config.steps
        deadline = self.session_start + config.minutes * 60 if config.minutes else None
        reporter.start("train", total=target_steps, unit="step")
        flag: dict[str, bool] = {"stop": False}
        rate_t0, rate_n = time.monotonic(), 0
        ex_per_s = 0.0
        with _sigint_to_flag(flag):
            while not self._should_stop(flag, deadline, reporter):
                ls, lt = self._checked_step()
                self._count(ls, lt)
                rate_n += 2 * self.batch * self.world
                el = time.monotonic() - rate_t0
                if el > 0:
                    ex_per_s = rate_n / el
                if target_steps is not None:
                    eta = (target_steps - self.run) * (time.monotonic() - self.session_start) / self.run
                else:
                    eta = deadline - time.monotonic() if deadline else 0.0
                reporter.advance(1, step=self.step, loss_src=ls, loss_tgt=lt, ex_s=round(ex_per_s, 1), eta=_fmt_eta(eta))
                if self.rank == 0 and config.preview_every and self.step % config.preview_every == 0:
                    self.periodic_preview(reporter)
                if config.save_every and self.step % config.save_every == 0:
                    self.checkpoint()
                if self.step == 1 or self.step % 50 == 0:  # keep the rate current
                    rate_t0, rate_n = time.monotonic(), 0

    def finish(self, reporter: Reporter) -> TrainSummary:
        """The last validation and checkpoint, then the summary (or Cancelled after a stop)."""
        out, step = self.out, self.step
        seconds = time.monotonic() - self.session_start
        if self.run > 0:
            if self.rank == 0 and (not self.history["val_step"] or self.history["val_step"][-1] != step):
                self.record_validation()
                out.mkdir(parents=True, exist_ok=True)
                self.loss_curve = str(out / "loss.png")
                write_loss_curve(self.loss_curve, self.history, f"{self.arch} · step {step}")
            self.checkpoint()
        reporter.finish()
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
        total_ex = 2 * self.batch * self.world * self.run
        summary = TrainSummary(
            out=str(out),
            arch=self.arch,
            step=step,
            steps_run=self.run,
            seconds=round(seconds, 3),
            examples_per_s=round(total_ex / seconds, 3) if seconds > 0 else 0.0,
            loss_source=self.last_ls,
            loss_target=self.last_lt,
            val_source=self.last_val.get("val_source"),
            val_target=self.last_val.get("val_target"),
            val_ssim_source=self.last_val.get("val_ssim_source"),
            val_ssim_target=self.last_val.get("val_ssim_target"),
            plateaued=self.plateau_noted,
            stopped=self.stopped,
            previews=tuple(self.previews),
            loss_curve=self.loss_curve,
        )
        if self.stopped:
            raise Cancelled(f"stopped at step {step}; the model is saved in {out} (continue with --resume)")
        return summary


def _check_options(c: TrainConfig) -> None:
    if c.arch is not None and c.arch not in ARCH_NAMES:
        raise BadInput(f"--arch {c.arch!r}: unknown architecture (choose from {', '.join(ARCH_NAMES)})")
    if c.steps is None and c.minutes is None:
        raise BadInput("give a length: --steps N or --minutes M")
    if c.steps is not None and c.minutes is not None:
        raise BadInput("give --steps or --minutes, not both")
    if c.steps is not None and c.steps < 1:
        raise BadInput(f"--steps must be at least 1 (got {c.steps})")
    if c.minutes is not None and not c.minutes > 0:
        raise BadInput(f"--minutes must be positive (got {c.minutes})")
    if c.batch_size is not None and c.batch_size < 1:
        raise BadInput(f"--batch-size must be at least 1 (got {c.batch_size})")
    if c.lr is not None and not (0 < c.lr < 1):
        raise BadInput(f"--lr must be between 0 and 1 (got {c.lr})")
    if not 0 <= c.ema < 1:
        raise BadInput(f"--ema must be 0 (off) or in (0, 1), e.g. 0.999 (got {c.ema})")
    if c.lr_schedule not in LR_SCHEDULES:
        raise BadInput(f"--lr-schedule {c.lr_schedule!r}: choose from {', '.join(LR_SCHEDULES)}")
    if c.warmup_steps < 0:
        raise BadInput(f"--warmup-steps must be 0 or more (got {c.warmup_steps})")
    if not 0 <= c.augment.warp_off_share <= 1:
        raise BadInput(f"--warp-off-share must be between 0 and 1 (got {c.augment.warp_off_share})")
    for name in ("eye_mouth_weight", "hf_weight"):
        v = getattr(c, name)
        if v is not None and not (0 <= v <= 100):
            raise BadInput(f"--{name.replace('_', '-')} must be between 0 and 100 (got {v})")
    if c.occlusion not in OCCLUSION_MODES:
        raise BadInput(f"--occlusion {c.occlusion!r}: choose from {', '.join(OCCLUSION_MODES)}")
    if c.preview_every < 0 or c.save_every < 0 or c.log_every < 1:
        raise BadInput("--preview-every and --save-every must be 0 or more")
