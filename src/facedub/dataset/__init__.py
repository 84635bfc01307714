"""Labelled deepfake-detection datasets from consented clips (``facedub dataset``).

:func:`~facedub.dataset.build.build_dataset` builds a whole dataset from a TOML spec
(:mod:`~facedub.dataset.spec`); :func:`~facedub.dataset.build.build_item` is one
(pair, clip) item, independent of the others, for a scheduler to fan out.
"""

from facedub.dataset.build import DatasetSummary, Item, Plan, build_dataset, build_item, make_plan
from facedub.dataset.spec import DatasetSpec, load_spec

__all__ = ["DatasetSpec", "DatasetSummary", "Item", "Plan", "build_dataset", "build_item", "load_spec", "make_plan"]
