"""Typed settings and results of the train stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from facedub.model.names import PRECISIONS, Precision  # re-exported: facedub.train.PRECISIONS

MIN_FACES = 20  # fewest faces a faceset needs for training (a few hundred is better)
DEFAULT_MINUTES = 60.0  # training budget when none is given: `train` without --steps, and `swap`


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of training batches (validation faces are never augmented)."""

    warp: bool = True  # the 2018 random grid warp on the input
    warp_sigma: float = 0.039  # std of control-point jitter, share of the side (2018: 5 px of 128)
    rotate_deg: float = 10.0  # random rotation range ±
    zoom: float = 0.05  # random scale range ±
    shift: float = 0.05  # random shift range ±, share of the side
    flip: bool = True  # random horizontal flip (half of the faces)
    colour: bool = True  # lightness/contrast/tint jitter
    colour_match: float = 0.5  # probability a face takes the colour statistics of the other identity
    warp_off_share: float = 0.0  # the last share of this session's length (steps or minutes) trains without the warp (DeepFaceLab practice; 0 = warp throughout)


@dataclass(frozen=True)
class TrainConfig:
    """One training session. ``steps`` and ``minutes`` count *this* session (a resume adds to it)."""

    source: str  # faceset of the identity whose face goes in
    target: str  # faceset of the person in the footage
    out: str  # model folder (created; must not hold a model unless resume=True)
    arch: str | None = None  # architecture name (None: "lite", or the checkpoint's when resuming)
    steps: int | None = None  # optimiser steps to run now
    minutes: float | None = None  # or: wall-clock budget for this session, in minutes
    batch_size: int | None = None  # faces per identity per step (None: the architecture's default)
    lr: float | None = None  # Adam learning rate (None: the architecture's default)
    seed: int = 0  # seeds weight initialisation and the data order/augmentation
    resume: bool = False  # continue the model in ``out`` exactly where it stopped
    preview_every: int = 200  # steps between validation, preview grid and loss curve
    save_every: int = 1000  # steps between checkpoints (also saved at the end and when stopped)
    log_every: int = 10  # steps per point of the training-loss history
    size: int | None = None  # model side in px (None: the architecture's default)
    coverage: float | None = None  # share of the aligned crop the model sees (None: default)
    width: float | None = None  # channel multiplier (None: default 1.0; small values for tests)
    precision: Precision = "auto"  # auto: bf16 autocast on CPUs with AVX512-BF16/AMX and on CUDA, else fp32
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # random augmentation settings
    threads: int | None = None  # CPU threads for torch (None: leave torch's default)
    device: str | None = None  # "cpu", "cuda", "cuda:1" (None: CUDA when available)
    ema: float = 0.0  # decay of an exponential moving average of the weights, which is what the model saves for convert (0 = off; e.g. 0.999)
    lr_schedule: str = "constant"  # "constant", or "cosine": linear warm-up over warmup_steps, then cosine decay to 10 % over this session's length
    warmup_steps: int = 0  # steps of linear learning-rate warm-up at the start of this session (cosine schedule only)
    eye_mouth_weight: float | None = None  # new models: extra loss weight on eyes and mouth (None: the architecture's)
    hf_weight: float | None = None  # new models: weight of an L1 term on the high-frequency band (image − its blur) (None: the architecture's, 0 for all today)
    occlusion: str = "off"  # "auto": pixels the occlusion network finds hidden (a hand, a microphone) carry no loss; "off": every pixel counts


@dataclass(frozen=True)
class TrainSummary:
    out: str  # model folder
    arch: str
    step: int  # total steps of the model
    steps_run: int  # steps run in this session
    seconds: float  # wall time of this session
    examples_per_s: float  # both identities counted, all processes
    loss_source: float | None  # last logged training losses
    loss_target: float | None
    val_source: float | None  # last validation losses
    val_target: float | None
    val_ssim_source: float | None  # last validation SSIM (reconstruction by its own decoder)
    val_ssim_target: float | None
    plateaued: bool  # validation loss stopped improving
    stopped: bool  # the user stopped the run (Ctrl-C / cancel); the model was saved
    previews: tuple[str, ...] = ()  # preview PNGs written in this session
    loss_curve: str | None = None  # loss-curve PNG
