"""The Gradio page of ``facedub ui``.

First the one-click **Swap** tab, then the five-step wizard — consent, faces, train, convert,
result — over one project folder (:mod:`facedub.project`). Each tab is built by its own
function in :mod:`facedub.ui.pages`; the pieces they show are plain functions in
:mod:`facedub.ui.render`. Buttons that take long start a background job
(:mod:`facedub.ui.jobs`); a timer polls the newest job state, so a reload of the page picks
up where it was. Every handler turns a facedub error into a plain message; nothing here shows
a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from facedub.errors import FacedubError
from facedub.project import create_project, is_inside
from facedub.ui import pages, tasks
from facedub.ui.jobs import JobManager
from facedub.ui.render import (  # noqa: F401 - the page's pieces, importable from here as before
    CSS,
    ERROR_LOG,
    TICK_S,
    _guard,
    _guarding,
    _most_recent,
    job_html,
    loss_plot,
    msg_err,
    msg_ok,
    project_md,
    train_stats_md,
    verify_html,
)
from facedub.ui.settings import UiSettings


def build_app(projects_root: str | Path, jobs: JobManager | None = None, settings: UiSettings | None = None) -> gr.Blocks:
    root = Path(projects_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    ctx = pages.Ctx(root=root, jm=jobs or JobManager(), cfg=settings or UiSettings(), guard=_guarding(root))
    ch = tasks.choices()
    # delete_cache: drop the app's served copies (previews, crops) older than a day, hourly
    with gr.Blocks(title="facedub", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        seen = gr.State({})
        job_box = _header(ctx)
        with gr.Tabs():
            with gr.Tab("Swap", id="tab-swap", elem_id="tab-swap"):
                pages.swap_page(ctx)
            with gr.Tab("1 · Consent", id="tab-consent", elem_id="tab-consent"):
                pages.consent_page(ctx)
            with gr.Tab("2 · Faces", id="tab-faces", elem_id="tab-faces"):
                pages.faces_page(ctx)
            with gr.Tab("3 · Train", id="tab-train", elem_id="tab-train"):
                pages.train_page(ctx, ch["arch"])
            with gr.Tab("4 · Convert", id="tab-convert", elem_id="tab-convert"):
                pages.convert_page(ctx, ch)
            with gr.Tab("5 · Result", id="tab-result", elem_id="tab-result"):
                pages.result_page(ctx)
        _wire_open(ctx, seen)
        _wire_poll(ctx, seen, job_box, gr.Timer(TICK_S))
        _wire_load(ctx, demo)
    return demo


def _header(ctx: pages.Ctx) -> Any:
    """Title, project picker, message line and the job box with its Stop button."""
    gr.Markdown(
        "# facedub\nConsent-first face replacement. Every result carries an invisible watermark, "
        "an *AI-generated* label and a provenance manifest."
    )
    with gr.Row():
        ctx.project_dd = gr.Dropdown(choices=ctx.names(), value=None, label="Project", elem_id="project-dd", scale=2, interactive=True)
        new_name = gr.Textbox(label="New project name", placeholder="e.g. my-first-swap", elem_id="new-name", scale=2)
        create_btn = gr.Button("Create project", elem_id="create-btn", scale=1)
    ctx.project_info = gr.Markdown(project_md(None), elem_id="project-info")
    ctx.message = gr.HTML("", elem_id="message")
    with gr.Row():
        job_box = gr.HTML(job_html(None), elem_id="job-box")
        stop_btn = gr.Button("Stop job", variant="stop", elem_id="stop-btn", scale=0)

    def on_create(name: str):
        p = create_project(ctx.root, name)
        return gr.update(choices=ctx.names(), value=p.name), "", msg_ok(f"Project {p.name} is ready.")

    create_btn.click(ctx.guard(on_create, 3), [new_name], [ctx.project_dd, new_name, ctx.message])

    def on_stop(name):
        return msg_ok("Stopping…") if ctx.jm.stop(ctx.get(name).root) else msg_ok("No job is running.")

    stop_btn.click(ctx.guard(on_stop, 1), [ctx.project_dd], [ctx.message])
    return job_box


def _wire_open(ctx: pages.Ctx, seen: Any) -> None:
    """Opening a project refreshes what every page registered with ``ctx.on_open``."""
    outputs: list[Any] = [ctx.project_info, seen]
    for outs, _fn in ctx.opens:
        outputs += outs
    outputs.append(ctx.message)

    def on_open(name: str | None):
        p = ctx.get(name) if name else None
        vals: list[Any] = [project_md(p), {}]
        for _outs, fn in ctx.opens:
            vals += fn(p)
        return (*vals, "")

    ctx.project_dd.change(ctx.guard(on_open, len(outputs)), [ctx.project_dd], outputs)


def _wire_poll(ctx: pages.Ctx, seen: Any, job_box: Any, timer: Any) -> None:
    """Every tick: the newest job (one cached read), then each page's own refresh."""
    outputs: list[Any] = [job_box, ctx.project_info]
    for outs, _fn in ctx.polls:
        outputs += outs
    outputs.append(seen)
    n_pages = len(outputs) - 3

    def on_tick(name: str | None, seen_v: dict[str, Any]):
        skip = gr.skip()
        if not name:
            return (job_html(None), skip, *([skip] * n_pages), seen_v)
        try:
            p = ctx.get(name)
        except FacedubError:
            return (skip, skip, *([skip] * n_pages), seen_v)
        seen_v = dict(seen_v or {})
        state = ctx.jm.latest(p.root)
        key = json.dumps([state.get("id"), state.get("updated"), state.get("status"), state.get("done")]) if state else "none"
        job = job_html(state) if pages._changed(seen_v, "job", key) else skip
        info = skip
        if state and state.get("status") in ("done", "failed", "refused", "cancelled", "interrupted") \
                and pages._changed(seen_v, "finished", f"{state.get('id')}:{state.get('status')}"):
            info = project_md(p)
        vals: list[Any] = []
        for outs, fn in ctx.polls:
            try:
                vals += fn(p, state, seen_v)
            except (FacedubError, OSError):  # a file that went away mid-poll: try again next tick
                vals += [skip] * len(outs)
        return (job, info, *vals, seen_v)

    timer.tick(on_tick, [ctx.project_dd, seen], outputs, show_progress="hidden")


def _wire_load(ctx: pages.Ctx, demo: Any) -> None:
    """A page load opens ``?project=NAME`` or the most recently used project."""

    def on_load(request: gr.Request):
        choices_now = ctx.names()
        try:
            want = request.query_params.get("project") if request else None
        except Exception:
            want = None
        if want not in choices_now:
            want = _most_recent(ctx.root, choices_now)
        return gr.update(choices=choices_now, value=want)

    demo.load(on_load, None, [ctx.project_dd])


__all__ = ["build_app", "job_html", "verify_html", "train_stats_md", "is_inside", "msg_ok", "msg_err"]
