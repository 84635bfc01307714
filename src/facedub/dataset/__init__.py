"""Labelled deepfake-detection datasets from consented clips (``facedub dataset``).

:func:`~facedub.dataset.build.build_dataset` builds a whole dataset from a TOML spec
(:mod:`~facedub.dataset.spec`); :func:`~facedub.dataset.build.build_item` is one
(pair, clip) item, independent of the others, for a scheduler to fan out.
"""

from facedub.dataset.build import DatasetSummary, Item, Plan, build_dataset, build_item, finish_build, make_plan, pending_items, prepare_build
from facedub.dataset.spec import DatasetSpec, load_spec

__all__ = [
    "DatasetSpec", "DatasetSummary", "Item", "Plan", "build_dataset", "build_item", "finish_build", "load_spec", "make_plan",
    "pending_items", "prepare_build",
]
