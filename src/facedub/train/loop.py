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
import datetime as _dt
import hashlib
import math
import os
import random
import signal
import threading
import time
from dataclasses import asdict
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
from facedub.train.data import IdentityData, Sampler, check_faceset, load_identity, make_batch, val_batch
from facedub.train.losses import reconstruction_loss, ssim
from facedub.train.preview import ROWS, plateaued, write_loss_curve, write_preview
from facedub.faceset.store import faceset_dir

PREVIEW_FACES = 4  # faces per preview row


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
        for name in ("size", "coverage", "width"):
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
        mcfg = default_config(arch, size=config.size, coverage=config.coverage, width=config.width)
        train_tensors = {}

    batch = int(config.batch_size or mcfg.batch_size)
    lr = float(config.lr or mcfg.lr)

    if config.threads:
        torch.set_num_threads(int(config.threads))
    if config.device:
        device = torch.device(config.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"device {config.device!r}: CUDA is not available here")
    amp_dtype = resolve_precision(config.precision, device)
    channels_last = device.type == "cpu"
    mf = torch.channels_last if channels_last else torch.contiguous_format

    reporter.start("load faces", total=2, unit="set")
    src = load_identity("source", source_fs, config.source, mcfg.size, mcfg.coverage)
    reporter.advance(1)
    tgt = load_identity("target", target_fs, config.target, mcfg.size, mcfg.coverage)
    reporter.advance(1)
    reporter.finish()

    # Model, optimiser, random state.
    torch.manual_seed(config.seed)
    net = build_from_meta(meta_in) if meta_in else build_model(arch, mcfg)
    if meta_in:
        load_state(net, out, meta_in)
    net = net.to(device=device, memory_format=mf)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(mcfg.beta1, mcfg.beta2))
    sampler = Sampler({"source": src.train.shape[0], "target": tgt.train.shape[0]}, config.seed + 7919 * rank)
    history: dict[str, list[float]] = {k: [] for k in ("step", "source", "target", "val_step", "val_source", "val_target", "val_ssim_source", "val_ssim_target")}
    step = 0
    examples = 0
    elapsed_before = 0.0
    log_acc: list[float] = [0.0, 0.0, 0]  # running sums of the training-loss history point
    if meta_in:
        ts = meta_in["training_state"]
        load_optimizer_state(opt, train_tensors, ts["optimizer"])
        for g in opt.param_groups:
            g["lr"] = lr
        if rank == 0:
            sampler.load_state(train_tensors, ts["sampler"])
        else:  # other ranks: a fresh stream that still depends on where the run is
            sampler = Sampler(sampler.sizes, config.seed + 7919 * rank + 104729 * int(meta_in.get("step", 0)))
        if "rng.torch_cpu" in train_tensors:
            torch.set_rng_state(train_tensors["rng.torch_cpu"])
        _set_rng_json(ts["rng"])
        log_acc[:] = list(ts.get("log_window", [0.0, 0.0, 0]))
        step = int(meta_in.get("step", 0))
        examples = int(meta_in.get("examples", 0))
        elapsed_before = float(meta_in.get("elapsed_s", 0.0))
        for k, v in (meta_in.get("losses") or {}).items():
            if k in history:
                history[k] = list(v)

    module: nn.Module = _Both(net)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        module = nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    aug = config.augment
    size = mcfg.size
    created = (meta_in or {}).get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    # A model's id: fixed when it is first created, so resumed training keeps it.
    model_id = (meta_in or {}).get("id") or hashlib.sha256(
        f"{created}|{arch}|{source_fs.id}|{target_fs.id}|{config.seed}".encode()
    ).hexdigest()[:16]
    previews: list[str] = []
    loss_curve: str | None = None
    plateau_noted = bool((meta_in or {}).get("plateaued", False))

    def to_dev(t: torch.Tensor) -> torch.Tensor:
        return t.to(device, non_blocking=True).contiguous(memory_format=mf)

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=amp_dtype)

    def one_step() -> tuple[float, float]:
        idx_s = sampler.take("source", batch)
        idx_t = sampler.take("target", batch)
        xs, ys, fs_, es = (to_dev(t) for t in make_batch(src, tgt, idx_s, size, aug, sampler.gen))
        xt, yt, ft, et = (to_dev(t) for t in make_batch(tgt, src, idx_t, size, aug, sampler.gen))
        with autocast():
            (ps, ms), (pt, mt) = module(xs, xt)
        ls = reconstruction_loss(ps, ys, mcfg, es, ms, fs_)
        lt = reconstruction_loss(pt, yt, mcfg, et, mt, ft)
        opt.zero_grad(set_to_none=True)
        (ls + lt).backward()
        opt.step()
        return float(ls.detach()), float(lt.detach())

    @torch.no_grad()
    def validate() -> dict[str, float]:
        net.eval()
        res: dict[str, float] = {}
        for name, data in (("source", src), ("target", tgt)):
            x, fm, em = val_batch(data)
            losses, ssims = [], []
            for i in range(0, x.shape[0], 32):
                xb, fb, eb = to_dev(x[i : i + 32]), to_dev(fm[i : i + 32]), to_dev(em[i : i + 32])
                with autocast():
                    p, m = net(xb, name)
                losses.append(float(reconstruction_loss(p, xb, mcfg, eb, m, fb)) * xb.shape[0])
                ssims.append(float(ssim(p.float(), xb).sum()))
            res[f"val_{name}"] = sum(losses) / x.shape[0]
            res[f"val_ssim_{name}"] = sum(ssims) / x.shape[0]
        net.train()
        return res

    @torch.no_grad()
    def preview(path: Path) -> None:
        net.eval()
        rows = []
        for face_side, dec_side in ROWS:
            data = src if face_side == "source" else tgt
            x = to_dev(val_batch(data)[0][:PREVIEW_FACES])
            with autocast():
                p, _ = net(x, dec_side)
            rows.append((f"{face_side}->{dec_side}", x.float().cpu(), p.float().cpu()))
        net.train()
        write_preview(path, rows)

    session_start = time.monotonic()

    def save(stop_flag: bool = False) -> None:
        if rank != 0:
            return
        opt_t, opt_js = optimizer_state(opt)
        smp_t, smp_js = sampler.state()
        tensors = {**opt_t, **smp_t, "rng.torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        meta = {
            "arch": arch,
            "summary": get_arch(arch).summary,
            "config": mcfg.to_dict(),
            "step": step,
            "examples": examples,
            "elapsed_s": round(elapsed_before + time.monotonic() - session_start, 3),
            "losses": history,
            "plateaued": plateau_noted,
            "train": {
                "batch_size": batch,
                "lr": lr,
                "seed": config.seed,
                "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
                "world_size": world,
                "device": device.type,
                "augment": asdict(aug),
            },
            "facesets": {"source": _faceset_record(source_fs, config.source, src), "target": _faceset_record(target_fs, config.target, tgt)},
            "id": model_id,
            "consent": consent_records,
            "source_descriptor": _descriptor_mean(source_fs),
            "target_descriptor": _descriptor_mean(target_fs),
            "training_state": {
                "optimizer": opt_js,
                "sampler": smp_js,
                "rng": _rng_json(),
                "log_window": [log_acc[0], log_acc[1], log_acc[2]],  # partial sums of the next history point
            },
            "created": created,
            "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "tool_version": __version__,
        }
        save_checkpoint(out, net, meta, tensors)

    # --- the loop ---
    target_steps = config.steps
    deadline = session_start + config.minutes * 60 if config.minutes else None
    reporter.start("train", total=target_steps, unit="step")
    flag: dict[str, bool] = {"stop": False}
    run = 0
    last_ls = last_lt = None
    last_val: dict[str, float] = {}
    rate_t0, rate_n = time.monotonic(), 0
    ex_per_s = 0.0
    stopped = False
    with _sigint_to_flag(flag):
        while True:
            if target_steps is not None and run >= target_steps:
                break
            now = time.monotonic()
            stop_here = deadline is not None and now >= deadline
            if flag["stop"] or reporter.should_stop():
                stopped = True
            if world > 1:  # all ranks stop together
                import torch.distributed as dist

                t = torch.tensor([float(stop_here), float(stopped)], device=device if device.type == "cuda" else "cpu")
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                stop_here, stopped = bool(t[0] > 0), bool(t[1] > 0)
            if stop_here or stopped:
                break
            try:
                ls, lt = one_step()
            except RuntimeError as e:
                if _is_oom(e):
                    raise BadInput(
                        f"--batch-size {batch} does not fit in {device.type} memory; try --batch-size {max(1, batch // 2)}"
                    ) from None
                raise
            if not (math.isfinite(ls) and math.isfinite(lt)):
                raise BadInput(f"training diverged at step {step + 1} (loss is not finite); lower --lr (now {lr:g})")
            step += 1
            run += 1
            examples += 2 * batch * world
            rate_n += 2 * batch * world
            log_acc[0] += ls
            log_acc[1] += lt
            log_acc[2] += 1
            if step % config.log_every == 0:
                history["step"].append(step)
                history["source"].append(round(log_acc[0] / log_acc[2], 6))
                history["target"].append(round(log_acc[1] / log_acc[2], 6))
                log_acc[:] = [0.0, 0.0, 0]
            last_ls, last_lt = ls, lt
            el = time.monotonic() - rate_t0
            if el > 0:
                ex_per_s = rate_n / el
            if target_steps is not None:
                eta = (target_steps - run) * (time.monotonic() - session_start) / run
            else:
                eta = deadline - time.monotonic() if deadline else 0.0
            reporter.advance(1, step=step, loss_src=ls, loss_tgt=lt, ex_s=round(ex_per_s, 1), eta=_fmt_eta(eta))
            if rank == 0 and config.preview_every and step % config.preview_every == 0:
                last_val = validate()
                history["val_step"].append(step)
                for k, v in last_val.items():
                    history[k].append(round(v, 6))
                out.mkdir(parents=True, exist_ok=True)
                (out / "previews").mkdir(exist_ok=True)
                pth = out / "previews" / f"step_{step:07d}.png"
                preview(pth)
                previews.append(str(pth))
                reporter.image(str(pth), f"preview at step {step}")
                loss_curve = str(out / "loss.png")
                write_loss_curve(loss_curve, history, f"{arch} · step {step}")
                reporter.image(loss_curve, "loss curve")
                vsum = [a + b for a, b in zip(history["val_source"], history["val_target"])]
                if not plateau_noted and plateaued(vsum):
                    plateau_noted = True
                    reporter.note(
                        f"validation loss has not improved by 1% over the last 5 checks (step {step}); "
                        "more training will change little — you can stop now (Ctrl-C saves the model)"
                    )
            if config.save_every and step % config.save_every == 0:
                save()
            if step == 1 or step % 50 == 0:  # keep the rate current
                rate_t0, rate_n = time.monotonic(), 0
    seconds = time.monotonic() - session_start
    if run > 0:
        if rank == 0 and (not history["val_step"] or history["val_step"][-1] != step):
            last_val = validate()
            history["val_step"].append(step)
            for k, v in last_val.items():
                history[k].append(round(v, 6))
            out.mkdir(parents=True, exist_ok=True)
            loss_curve = str(out / "loss.png")
            write_loss_curve(loss_curve, history, f"{arch} · step {step}")
        save()
    reporter.finish()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    total_ex = 2 * batch * world * run
    summary = TrainSummary(
        out=str(out),
        arch=arch,
        step=step,
        steps_run=run,
        seconds=round(seconds, 3),
        examples_per_s=round(total_ex / seconds, 3) if seconds > 0 else 0.0,
        loss_source=last_ls,
        loss_target=last_lt,
        val_source=last_val.get("val_source"),
        val_target=last_val.get("val_target"),
        val_ssim_source=last_val.get("val_ssim_source"),
        val_ssim_target=last_val.get("val_ssim_target"),
        plateaued=plateau_noted,
        stopped=stopped,
        previews=tuple(previews),
        loss_curve=loss_curve,
    )
    if stopped:
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
    if c.preview_every < 0 or c.save_every < 0 or c.log_every < 1:
        raise BadInput("--preview-every and --save-every must be 0 or more")
