"""Architectures registered by name, each with a typed frozen config; a factory builds them.

``ARCHS[name]`` is an :class:`ArchSpec` (config class, model class, one-line summary).
``build_model(name, config)`` returns the ``nn.Module``; ``config_from_dict`` rebuilds a
config from ``model.json`` (unknown keys refused, so a file from a newer facedub fails loudly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

from torch import nn

from facedub.errors import ModelMismatch
from facedub.model.names import ARCH_NAMES, DEFAULT_ARCH, SIDES, ArchName, Side  # noqa: F401


@dataclass(frozen=True)
class ModelConfig:
    """Fields every architecture has. Subclasses change defaults and add their own fields."""

    size: int = 64  # model input/output side in pixels
    coverage: float = 0.6875  # share of the 256 px aligned crop the model sees (centred)
    width: float = 1.0  # channel multiplier (1.0 = the published widths; tests use small values)
    learned_mask: bool = False  # decoders output a 4th channel: a face mask (for occlusions)
    lr: float = 5e-5  # default Adam learning rate
    beta1: float = 0.5  # Adam β1
    beta2: float = 0.999  # Adam β2
    batch_size: int = 16  # default examples per identity per step
    l1_weight: float = 1.0  # weight of the mean absolute error
    dssim_weight: float = 0.0  # weight of the structural dissimilarity (1-SSIM)/2
    eye_mouth_weight: float = 0.0  # extra loss weight on eye and mouth pixels (0 = none)
    mask_weight: float = 0.0  # weight of the mask loss (learned_mask only)
    hf_weight: float = 0.0  # weight of the L1 on the high-frequency band (image − Gaussian blur, σ 1 px): pays for edges and texture

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    config_cls: type[ModelConfig]
    model_cls: Callable[[Any], nn.Module]
    summary: str


ARCHS: dict[str, ArchSpec] = {}


def register(name: str, config_cls: type[ModelConfig], summary: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: ``@register("lite", LiteConfig, "…")``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        ARCHS[name] = ArchSpec(name, config_cls, cls, summary)
        return cls

    return deco


def _ensure_loaded() -> None:
    # Importing the modules registers the architectures.
    from facedub.model import hd, lite, original, saehd  # noqa: F401


def get_arch(name: str) -> ArchSpec:
    _ensure_loaded()
    if name not in ARCHS:
        raise ModelMismatch(f"unknown architecture {name!r} (choose from {', '.join(ARCH_NAMES)})")
    return ARCHS[name]


def default_config(name: str, **overrides: Any) -> ModelConfig:
    """The architecture's default config with ``overrides`` (``None`` values ignored)."""
    spec = get_arch(name)
    kw = {k: v for k, v in overrides.items() if v is not None}
    return config_from_dict(name, {**spec.config_cls().to_dict(), **kw})


def config_from_dict(name: str, d: dict[str, Any]) -> ModelConfig:
    spec = get_arch(name)
    known = {f.name for f in fields(spec.config_cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ModelMismatch(f"architecture {name!r} has no setting(s) {', '.join(unknown)}")
    cfg = spec.config_cls(**d)
    if cfg.size % 16 or cfg.size < 16:
        raise ModelMismatch(f"model size must be a multiple of 16 (got {cfg.size})")
    if not 0.3 <= cfg.coverage <= 1.0:
        raise ModelMismatch(f"coverage must be between 0.3 and 1.0 (got {cfg.coverage})")
    return cfg


def build_model(name: str, config: ModelConfig | None = None) -> nn.Module:
    spec = get_arch(name)
    cfg = spec.config_cls() if config is None else config
    if not isinstance(cfg, spec.config_cls):
        raise ModelMismatch(f"architecture {name!r} needs a {spec.config_cls.__name__}, got {type(cfg).__name__}")
    return spec.model_cls(cfg)
