"""``facedub dataset --cluster``: the dataset's items as tasks, through its public API only
(:func:`~facedub.dataset.prepare_build`, :func:`~facedub.dataset.pending_items`,
:func:`~facedub.dataset.build_item`, :func:`~facedub.dataset.finish_build`)."""

from __future__ import annotations

import os
from typing import Any

from facedub.batch.cluster import Call, Executor
from facedub.progress import NullReporter, Reporter


def build_item_stage(plan: Any, item: Any, staging: str) -> dict[str, Any]:
    from facedub.dataset import build_item

    return build_item(plan, item, staging)


def build_dataset_on(executor: Executor, spec_path: str | os.PathLike[str], out: str | os.PathLike[str], reporter: Reporter | None = None) -> Any:
    """Checks and plan here, one task per pending item on ``executor``, the finish here. An
    item that fails leaves the others finished in the staging folder: a rerun builds the rest."""
    from facedub.dataset import finish_build, pending_items, prepare_build

    reporter = reporter or NullReporter()
    plan, staging, notes = prepare_build(spec_path, out, reporter)
    todo = pending_items(plan, staging)
    reporter.note(f"dataset: {len(todo)} item(s) to build on {executor.where}")
    executor.run(
        [Call(build_item_stage, (plan, item, str(staging)), label=f"dataset:{item.key}") for item in todo],
        lambda k, st: reporter.note(f"dataset item done: {todo[k].key}"),
    )
    return finish_build(plan, staging, out, built=len(todo), notes=notes)
