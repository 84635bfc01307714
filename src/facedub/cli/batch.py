"""``facedub batch JOBS [--cluster ADDRESS]``: many swaps from one job file, resumable."""

from __future__ import annotations

import argparse
import json
from typing import Any

from facedub.batch.cluster import add_cluster_argument


def register(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="run the swaps listed in a job file, resumably, here or on a Ray cluster",
        description=(
            "Run every job of the TOML job file JOBS (see the README's 'Batch jobs and clusters'): each is a "
            "swap (extract, train, convert, verify, evaluate, with the settings of 'facedub swap'), or with "
            "model = FOLDER only a conversion. Each job keeps a JSON state file, so running the same command "
            "again skips finished jobs and stages. A failing job records its error and the others go on; the "
            "exit code is 0 only when every job is done. With --cluster, extraction, training and conversion "
            "run as Ray tasks (an image-sequence target split into frame ranges)."
        ),
    )
    p.add_argument("jobs", metavar="JOBS", help="the job file (TOML)")
    add_cluster_argument(p, "the jobs' stages")
    p.add_argument("--state", metavar="DIR", default=None, help="folder of the per-job state files (default: JOBS.state beside the job file)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, reporter: Any) -> int:
    from facedub.batch.cluster import connect
    from facedub.batch.jobs import load_jobs
    from facedub.batch.runner import run_batch

    jobs = load_jobs(args.jobs)  # a bad file: one line, exit 2, nothing written
    with connect(args.cluster) as executor:
        summary = run_batch(jobs, executor, args.state, reporter)
    reporter.close()
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        print("\n".join(summary.lines()))
    return summary.exit_code
