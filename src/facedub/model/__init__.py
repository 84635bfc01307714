"""Swap models: a shared encoder and one decoder per identity, registered by name.

``build_model(arch, config)``, ``default_config(arch, **overrides)``, ``ARCH_NAMES``,
``load_model(folder, device=None) -> LoadedModel``. The choice sets (``ARCH_NAMES``, …) import
without torch; everything else loads torch on first use.
"""

from typing import Any

from facedub.model.names import ARCH_NAMES, DEFAULT_ARCH, SIDES, ArchName, Side

_LAZY = {
    "LoadedModel": "facedub.model.checkpoint",
    "load_model": "facedub.model.checkpoint",
    "read_meta": "facedub.model.checkpoint",
    "ARCHS": "facedub.model.registry",
    "ModelConfig": "facedub.model.registry",
    "build_model": "facedub.model.registry",
    "config_from_dict": "facedub.model.registry",
    "default_config": "facedub.model.registry",
    "get_arch": "facedub.model.registry",
}

__all__ = ["ARCH_NAMES", "DEFAULT_ARCH", "SIDES", "ArchName", "Side", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
