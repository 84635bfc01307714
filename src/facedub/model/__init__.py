"""Swap models: a shared encoder and one decoder per identity, registered by name.

``build_model(arch, config)``, ``default_config(arch, **overrides)``, ``ARCH_NAMES``,
``load_model(folder, device=None) -> LoadedModel``.
"""

from facedub.model.checkpoint import LoadedModel, load_model, read_meta
from facedub.model.registry import (
    ARCH_NAMES,
    ARCHS,
    DEFAULT_ARCH,
    SIDES,
    ArchName,
    ModelConfig,
    Side,
    build_model,
    config_from_dict,
    default_config,
    get_arch,
)

__all__ = [
    "ARCH_NAMES",
    "ARCHS",
    "DEFAULT_ARCH",
    "SIDES",
    "ArchName",
    "LoadedModel",
    "ModelConfig",
    "Side",
    "build_model",
    "config_from_dict",
    "default_config",
    "get_arch",
    "load_model",
    "read_meta",
]
