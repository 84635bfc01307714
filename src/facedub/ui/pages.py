"""The pages of the web app, one small builder each: Swap (one click), then the five-step
wizard (Consent, Faces, Train, Convert, Result).

Each builder lays out its tab inside ``gr.Blocks``, wires its buttons, and registers with
the :class:`Ctx` what the one-second poll refreshes (:meth:`Ctx.poll`) and what opening a
project refreshes (:meth:`Ctx.on_open`). Handlers whose last output is the message box are
wrapped by ``ctx.guard``: a facedub error is one plain line, a bug one line plus its
traceback in the projects root's ``ui-errors.log``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from facedub.errors import FacedubError
from facedub.extract.config import ExtractConfig
from facedub.project import ROLES, Project, create_project, faceset_crops, import_upload, list_projects, open_project, remove_faces, set_inputs
from facedub.ui import tasks
from facedub.ui.jobs import FINISHED, JobManager
from facedub.ui.render import (
    GALLERY_MAX,
    _find_image,
    _safe_verify,
    before_after,
    budget_md,
    consent_md,
    inputs_md,
    loss_plot,
    msg_ok,
    project_md,
    quality_md,
    stages_html,
    train_stats_md,
    verify_html,
)
from facedub.ui.settings import UiSettings, check_quota

Poll = Callable[[Project, "dict[str, Any] | None", "dict[str, Any]"], list[Any]]


@dataclass
class Ctx:
    """What every page builder shares: the projects root, jobs, limits and the page's common parts."""

    root: Path
    jm: JobManager
    cfg: UiSettings
    guard: Callable[[Callable[..., Any], int], Callable[..., Any]]
    project_dd: Any = None
    message: Any = None
    project_info: Any = None
    polls: list[tuple[list[Any], Poll]] = field(default_factory=list)
    opens: list[tuple[list[Any], Callable[[Project | None], list[Any]]]] = field(default_factory=list)

    def get(self, name: str | None) -> Project:
        if not name:
            raise FacedubError("create or open a project first")
        return open_project(self.root, name)

    def names(self) -> list[str]:
        return [p.name for p in list_projects(self.root)]

    def start(self, name: str, kind: str, fn_maker: Callable[[Project], Any], label: str) -> str:
        p = self.get(name)
        self.jm.start(p.root, kind, fn_maker(p), label)
        return msg_ok(f"{label}: started")

    def poll(self, outputs: list[Any], fn: Poll) -> None:
        """``fn(project, latest job state, seen)`` → one value (or gr.skip()) per output, every tick."""
        self.polls.append((outputs, fn))

    def on_open(self, outputs: list[Any], fn: Callable[[Project | None], list[Any]]) -> None:
        self.opens.append((outputs, fn))

    def use_files(self, p: Project, role: str, uploads: Any, path_text: str | None) -> tuple[Project, list[str]]:
        """Uploads (copied into the project, within its quota) and typed paths (if allowed) as the role's inputs."""
        typed = [self.cfg.check_local_path(line.strip()) for line in (path_text or "").splitlines() if line.strip()]
        if isinstance(uploads, (str, Path)):
            uploads = [uploads]
        ups = [up if isinstance(up, str) else getattr(up, "name", str(up)) for up in uploads or []]
        check_quota(self.cfg, p.root, ups)
        files = [str(import_upload(p, role, u)) for u in ups] + typed
        if files:
            p = set_inputs(p, role, files)
        return p, files


def _changed(seen: dict[str, Any], key: str, value: Any) -> bool:
    if seen.get(key) == value:
        return False
    seen[key] = value
    return True


def _mtime_key(path: str | Path | None) -> str | None:
    try:
        return f"{path}:{Path(path).stat().st_mtime}" if path else None
    except OSError:
        return None


def consent_form(role: str, prefix: str = "") -> dict[str, Any]:
    """The consent fields of one identity (evidence upload, synthetic tick box)."""
    e = f"{prefix}{role}"
    return {
        "subject": gr.Textbox(label="Subject (whose face)", elem_id=f"{e}-subject"),
        "granted_by": gr.Textbox(label="Granted by", elem_id=f"{e}-granted-by"),
        "scope": gr.Textbox(label="Scope (what it may be used for)", elem_id=f"{e}-scope"),
        "expires": gr.Textbox(label="Expires (YYYY-MM-DD, empty = no expiry)", elem_id=f"{e}-expires"),
        "evidence": gr.File(label="Evidence (signed release, recording) — kept in the project, never shared", type="filepath", height=110, elem_id=f"{e}-evidence"),
        "synthetic": gr.Checkbox(label="Synthetic identity (AI-generated, no real person)", elem_id=f"{e}-synthetic"),
    }


CONSENT_FIELDS = ("subject", "granted_by", "scope", "expires", "evidence", "synthetic")


# --- Swap: one click ---------------------------------------------------------------------
def swap_page(ctx: Ctx) -> None:
    gr.Markdown(
        "Put one person's face into another video in one go: choose both videos, record both consents, "
        "pick how long to train, press **Swap**. It runs the same steps as `facedub swap` "
        "(extract, train, convert, verify, quality report). For control over each step use the numbered tabs."
    )
    w: dict[str, Any] = {}
    with gr.Row():
        for role, what in (("source", "the face put in"), ("target", "the video whose face is replaced")):
            with gr.Column():
                gr.Markdown(f"### {role.capitalize()} video ({what})")
                w[f"{role}-upload"] = gr.File(label=f"Upload the {role} video", file_count="multiple" if role == "source" else "single",
                                              type="filepath", elem_id=f"swap-{role}-upload")
                w[f"{role}-path"] = gr.Textbox(label="…or a path on this computer", elem_id=f"swap-{role}-path", visible=ctx.cfg.paths_enabled)
                w[f"{role}-inputs"] = gr.Markdown("", elem_id=f"swap-{role}-inputs")
                gr.Markdown(f"**Consent of the {role} identity**")
                w[f"{role}-consent"] = consent_form(role, "swap-")
                w[f"{role}-consent-status"] = gr.Markdown("", elem_id=f"swap-{role}-consent-status")
    minutes = gr.Number(value=30, minimum=0.01, label="Training time budget (minutes)", elem_id="swap-minutes")
    gr.Markdown(budget_md(), elem_id="swap-budgets")
    with gr.Row():
        go = gr.Button("Swap", variant="primary", elem_id="swap-btn")
        stop = gr.Button("Stop", variant="stop", elem_id="swap-stop")
        cont = gr.Button("Continue", elem_id="swap-continue")
    stages = gr.HTML(stages_html(None), elem_id="swap-stages-box")
    stats = gr.Markdown("", elem_id="swap-train-stats")
    with gr.Row():
        preview = gr.Image(label="Training preview", type="filepath", interactive=False, elem_id="swap-preview")
        loss = gr.Image(label="Loss", type="filepath", interactive=False, elem_id="swap-loss")
    with gr.Row():  # the two players side by side, then one frame of each
        before = gr.Video(label="Before (the target)", interactive=False, height=360, elem_id="swap-before-video")
        video = gr.Video(label="After (the result)", interactive=False, height=360, elem_id="swap-result-video")
    compare = gr.Image(label="Before | after (one frame)", type="filepath", interactive=False, elem_id="swap-compare")
    quality = gr.Markdown("", elem_id="swap-quality")
    badge = gr.HTML(verify_html(None, "swap-verify-badge"), elem_id="swap-verify")
    report = gr.File(label="Quality report (HTML)", interactive=False, elem_id="swap-report")

    form_inputs = [ctx.project_dd, minutes]
    for role in ROLES:
        form_inputs += [w[f"{role}-upload"], w[f"{role}-path"], *(w[f"{role}-consent"][k] for k in CONSENT_FIELDS)]

    def on_swap(name, minutes_v, *fields):
        p = ctx.get(name) if name else create_project(ctx.root, time.strftime("swap-%Y%m%d-%H%M%S", time.gmtime()))
        per = len(fields) // len(ROLES)
        for i, role in enumerate(ROLES):
            up, path, subject, granted_by, scope, expires, evidence, synthetic = fields[i * per:(i + 1) * per]
            if (subject or "").strip() or evidence or not p.has_consent(role):
                check_quota(ctx.cfg, p.root, [evidence] if evidence else [])
                tasks.record_consent(p, role, subject, granted_by, scope, expires, evidence, synthetic)
            p, _files = ctx.use_files(p, role, up, path)
        ctx.jm.start(p.root, "swap", tasks.swap_job(p, float(minutes_v or 0)), "Swap")
        return gr.update(choices=ctx.names(), value=p.name), msg_ok(f"Swap started in project {p.name}.")

    go.click(ctx.guard(on_swap, 2), form_inputs, [ctx.project_dd, ctx.message])

    def on_swap_continue(name, minutes_v):
        return ctx.start(name, "swap", lambda p: tasks.swap_job(p, float(minutes_v or 0)), "Swap")

    cont.click(ctx.guard(on_swap_continue, 1), [ctx.project_dd, minutes], [ctx.message])

    def on_swap_stop(name):
        return msg_ok("Stopping… (the model is saved; Continue goes on from it)") if ctx.jm.stop(ctx.get(name).root) else msg_ok("No job is running.")

    stop.click(ctx.guard(on_swap_stop, 1), [ctx.project_dd], [ctx.message])

    def opened(p: Project | None) -> list[Any]:
        return [consent_md(p, r) for r in ROLES] + [inputs_md(p, r) for r in ROLES]

    ctx.on_open([w["source-consent-status"], w["target-consent-status"], w["source-inputs"], w["target-inputs"]], opened)

    def poll(p: Project, latest: dict[str, Any] | None, seen: dict[str, Any]) -> list[Any]:
        out: list[Any] = [gr.skip()] * 10
        st = latest if latest and latest.get("kind") == "swap" else ctx.jm.latest(p.root, "swap")
        if not st:
            return out
        if _changed(seen, "swap", json.dumps([st.get("id"), st.get("updated"), st.get("status"), st.get("done"), st.get("stages")])):
            out[0] = stages_html(st)
            if st.get("phase") == "train" or (st.get("metrics") or {}).get("loss_src") is not None:
                out[1] = train_stats_md(dict(st, kind="train"))
        pv = _find_image(st, "preview", "grid")
        if pv and _changed(seen, "swap-prev", _mtime_key(pv)):
            out[2] = pv
        if st.get("phase") == "train" and time.time() - seen.get("swap-loss-t", 0) > 5:
            seen["swap-loss-t"] = time.time()
            lp = loss_plot(st, p.jobs_dir / f"{st['id']}-loss.png")
            if lp and _changed(seen, "swap-loss", _mtime_key(lp)):
                out[3] = lp
        if st.get("status") == "done" and _changed(seen, "swap-done", st.get("id")):
            summ = (st.get("result") or {}).get("swap") or {}
            res = p.result_path
            if res.is_file():
                target = tasks._target_video(p)
                out[4] = before_after(target, res, p.output_dir / "before-after.png")
                out[5] = str(res)
                if Path(target).resolve().is_relative_to(p.root.resolve()):  # an uploaded target (the page may serve project files only)
                    out[9] = target
            out[6] = quality_md(summ)
            out[7] = verify_html(summ.get("verify"), "swap-verify-badge")
            rep = summ.get("eval_report")
            out[8] = rep if rep and Path(rep).is_file() else None
        return out

    ctx.poll([stages, stats, preview, loss, compare, video, quality, badge, report, before], poll)


# --- the wizard ----------------------------------------------------------------------------
def consent_page(ctx: Ctx) -> None:
    gr.Markdown(
        "Record who agreed to what, for both faces. Training refuses faces without a valid record. "
        "Tick *synthetic* only for AI-generated faces that belong to no real person. An evidence file "
        "is kept in the project beside the record (`facedub consent show PROJECT` checks it)."
    )
    statuses = []
    with gr.Row():
        for role in ROLES:
            with gr.Column():
                gr.Markdown(f"### {role.capitalize()} identity" + (" (the face put in)" if role == "source" else " (the face replaced)"))
                cw = consent_form(role)
                save = gr.Button(f"Save {role} consent", elem_id=f"{role}-consent-save")
                status = gr.Markdown("", elem_id=f"{role}-consent-status")
                statuses.append(status)

                def on_consent(name, subject, granted_by, scope, expires, evidence, synthetic, _role=role):
                    p = ctx.get(name)
                    check_quota(ctx.cfg, p.root, [evidence] if evidence else [])
                    tasks.record_consent(p, _role, subject, granted_by, scope, expires, evidence, synthetic)
                    return consent_md(p, _role), project_md(p), msg_ok(f"{_role.capitalize()} consent saved.")

                save.click(ctx.guard(on_consent, 3), [ctx.project_dd, *(cw[k] for k in CONSENT_FIELDS)], [status, ctx.project_info, ctx.message])
    ctx.on_open(statuses, lambda p: [consent_md(p, r) for r in ROLES])


def _gallery(p: Project | None, role: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Gallery items (path, caption) and the crop names in the same order."""
    if p is None:
        return [], []
    crops = faceset_crops(p.faceset_dir(role))[:GALLERY_MAX]
    return [(str(path), f"frame {frame}") for path, _rel, frame in crops], [rel for _p, rel, _f in crops]


def faces_page(ctx: Ctx) -> None:
    gr.Markdown("Choose videos (upload" + (", or a path on this computer" if ctx.cfg.paths_enabled else "")
                + "), extract the faces, and remove bad crops before training.")
    with gr.Row():
        every = gr.Number(value=ExtractConfig().every, precision=0, minimum=1, label="Use every Nth frame", elem_id="extract-every")
        max_frames = gr.Number(value=0, precision=0, minimum=0, label="At most this many frames per video (0 = all)", elem_id="extract-max-frames")
    fws: dict[str, dict[str, Any]] = {}
    with gr.Row():
        for role in ROLES:
            with gr.Column():
                fws[role] = _faces_column(ctx, role, every, max_frames)
    opens: list[Any] = []
    for role in ROLES:
        opens += [fws[role]["inputs"], fws[role]["gallery"], fws[role]["files"], fws[role]["selected"], fws[role]["selected_md"]]

    def opened(p: Project | None) -> list[Any]:
        out: list[Any] = []
        for role in ROLES:
            items, files = _gallery(p, role)
            out += [inputs_md(p, role), items, files, [], ""]
        return out

    ctx.on_open(opens, opened)

    def poll(p: Project, latest: dict[str, Any] | None, seen: dict[str, Any]) -> list[Any]:
        if latest and latest.get("status") in FINISHED and latest.get("kind") in ("extract", "swap") \
                and _changed(seen, "faces-fin", f"{latest.get('id')}:{latest.get('status')}"):
            return [*_gallery(p, "source"), *_gallery(p, "target")]
        return [gr.skip()] * 4

    ctx.poll([fws["source"]["gallery"], fws["source"]["files"], fws["target"]["gallery"], fws["target"]["files"]], poll)


def _faces_column(ctx: Ctx, role: str, every: Any, max_frames: Any) -> dict[str, Any]:
    gr.Markdown(f"### {role.capitalize()}")
    fw = {
        "upload": gr.File(label=f"Upload {role} video(s) or images", file_count="multiple", type="filepath", elem_id=f"{role}-upload"),
        "path": gr.Textbox(label="…or a path on this computer (one per line)", lines=2, elem_id=f"{role}-path", visible=ctx.cfg.paths_enabled),
    }
    fw["use"] = gr.Button(f"Use these {role} files", elem_id=f"{role}-use")
    fw["inputs"] = gr.Markdown("", elem_id=f"{role}-inputs")
    fw["extract"] = gr.Button(f"Extract {role} faces", variant="primary", elem_id=f"{role}-extract")
    fw["gallery"] = gr.Gallery(label=f"{role} faces (click to select)", columns=6, height=320, allow_preview=False, elem_id=f"{role}-gallery")
    fw["selected"] = gr.State([])  # crop names picked for removal
    fw["files"] = gr.State([])  # crop names in gallery order
    fw["selected_md"] = gr.Markdown("", elem_id=f"{role}-selected")
    with gr.Row():
        fw["remove"] = gr.Button("Remove selected faces", elem_id=f"{role}-remove")
        fw["clear"] = gr.Button("Clear selection", elem_id=f"{role}-clear")

    def on_use(name, uploads, path_text, _role=role):
        p, files = ctx.use_files(ctx.get(name), _role, uploads, path_text)
        if not files:
            raise FacedubError(f"{_role}: upload a file" + (" or type a path" if ctx.cfg.paths_enabled else "") + " first")
        return inputs_md(p, _role), project_md(p), msg_ok(f"{len(files)} {_role} file(s) chosen.")

    fw["use"].click(ctx.guard(on_use, 3), [ctx.project_dd, fw["upload"], fw["path"]], [fw["inputs"], ctx.project_info, ctx.message])

    def on_extract(name, every_n, maxf, _role=role):
        return ctx.start(name, "extract", lambda p: tasks.extract_job(p, _role, int(every_n or 1), int(maxf or 0) or None), f"Extract {_role} faces")

    fw["extract"].click(ctx.guard(on_extract, 1), [ctx.project_dd, every, max_frames], [ctx.message])

    def on_select(selected: list[str], files: list[str], evt: gr.SelectData):
        i = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
        if i is None or not files or not 0 <= i < len(files):
            return gr.skip(), gr.skip()
        sel = list(selected or [])
        sel.remove(files[i]) if files[i] in sel else sel.append(files[i])
        shown = ", ".join(Path(n).stem for n in sel[:8]) + (" …" if len(sel) > 8 else "")
        return sel, (f"Selected {len(sel)}: {shown}" if sel else "")

    fw["gallery"].select(on_select, [fw["selected"], fw["files"]], [fw["selected"], fw["selected_md"]])

    def on_remove(name, selected, _role=role):
        p = ctx.get(name)
        if ctx.jm.active(p.root) is not None:
            raise FacedubError("wait for the running job to finish before removing faces")
        if not selected:
            raise FacedubError("click the faces to remove first")
        remove_faces(p.faceset_dir(_role), selected)
        items, files = _gallery(p, _role)
        return items, files, [], "", project_md(p), msg_ok(f"Removed {len(selected)} {_role} face(s); extraction will not add them back.")

    fw["remove"].click(ctx.guard(on_remove, 6), [ctx.project_dd, fw["selected"]],
                       [fw["gallery"], fw["files"], fw["selected"], fw["selected_md"], ctx.project_info, ctx.message])
    fw["clear"].click(lambda: ([], ""), None, [fw["selected"], fw["selected_md"]])
    return fw


def train_page(ctx: Ctx, archs: tuple[str, ...]) -> None:
    with gr.Row():
        arch = gr.Dropdown(choices=list(archs), value="lite" if "lite" in archs else archs[0], label="Model", elem_id="train-arch")
        minutes = gr.Number(value=0, minimum=0, label="Minutes (0 = count steps instead)", elem_id="train-minutes")
        steps = gr.Number(value=2000, precision=0, minimum=1, label="Steps", elem_id="train-steps")
        batch = gr.Number(value=16, precision=0, minimum=1, label="Batch size", elem_id="train-batch")
        preview_every = gr.Number(value=100, precision=0, minimum=1, label="Preview every N steps", elem_id="train-preview-every")
        resume = gr.Checkbox(value=True, label="Continue the saved model when there is one", elem_id="train-resume")
    btn = gr.Button("Start training", variant="primary", elem_id="train-btn")
    stats = gr.Markdown("", elem_id="train-stats")
    with gr.Row():
        preview = gr.Image(label="Preview grid", type="filepath", interactive=False, elem_id="train-preview")
        loss = gr.Image(label="Loss", type="filepath", interactive=False, elem_id="train-loss")

    def on_train(name, arch_v, minutes_v, steps_v, batch_v, prev_v, resume_v):
        by_time = float(minutes_v or 0) > 0
        return ctx.start(
            name, "train",
            lambda p: tasks.train_job(p, arch_v, None if by_time else int(steps_v or 1), int(batch_v or 0) or None, bool(resume_v),
                                      int(prev_v or 0) or None, minutes=float(minutes_v) if by_time else None),
            "Training",
        )

    btn.click(ctx.guard(on_train, 1), [ctx.project_dd, arch, minutes, steps, batch, preview_every, resume], [ctx.message])

    def poll(p: Project, latest: dict[str, Any] | None, seen: dict[str, Any]) -> list[Any]:
        out: list[Any] = [gr.skip()] * 3
        st = latest if latest and latest.get("kind") == "train" else ctx.jm.latest(p.root, "train")
        if not st or not _changed(seen, "train", f"{st.get('id')}:{st.get('updated')}"):
            return out
        out[0] = train_stats_md(st)
        pv = _find_image(st, "preview", "grid")
        if pv and _changed(seen, "tprev", _mtime_key(pv)):
            out[1] = pv
        lp = _find_image(st, "loss")
        if lp is None and time.time() - seen.get("tloss_t", 0) > 5:
            seen["tloss_t"] = time.time()
            lp = loss_plot(st, p.jobs_dir / f"{st['id']}-loss.png")
        if lp and _changed(seen, "tloss", _mtime_key(lp)):
            out[2] = lp
        return out

    ctx.poll([stats, preview, loss], poll)


def convert_page(ctx: Ctx, ch: dict[str, tuple[str, ...]]) -> None:
    defaults = tasks.convert_settings(ch["mask"][0], ch["color"][0], ch["blend"][0])  # slider starting values
    with gr.Row():
        mask = gr.Dropdown(choices=list(ch["mask"]), value=ch["mask"][0], label="Mask", elem_id="conv-mask")
        color = gr.Dropdown(choices=list(ch["color"]), value=ch["color"][0], label="Colour", elem_id="conv-color")
        blend = gr.Dropdown(choices=list(ch["blend"]), value=ch["blend"][0], label="Blend", elem_id="conv-blend")
        frame = gr.Number(value=0, precision=0, minimum=0, label="Preview frame", elem_id="conv-frame")
    with gr.Row():
        forehead = gr.Slider(0.0, 1.0, value=defaults.forehead, step=0.05, elem_id="conv-forehead",
                             label="Forehead (how far the new face reaches above the brows; 0 keeps a fringe of hair)")
        sharpen = gr.Slider(0.0, 3.0, value=defaults.sharpen, step=0.1, label="Sharpen the new face (0 = off)", elem_id="conv-sharpen")
    with gr.Row():
        preview_btn = gr.Button("Preview this frame", elem_id="preview-btn")
        render_btn = gr.Button("Render video", variant="primary", elem_id="render-btn")
    preview = gr.Image(label="Before / after", type="filepath", interactive=False, elem_id="conv-preview")

    def settings(mask_v, color_v, blend_v, forehead_v, sharpen_v) -> dict[str, Any]:
        return {"mask": mask_v, "color": color_v, "blend": blend_v, "forehead": forehead_v, "sharpen": sharpen_v}

    def on_preview(name, mask_v, color_v, blend_v, forehead_v, sharpen_v, frame_v):
        chosen = settings(mask_v, color_v, blend_v, forehead_v, sharpen_v)
        return ctx.start(name, "preview", lambda p: tasks.preview_job(p, int(frame_v or 0), chosen), "Preview frame")

    preview_btn.click(ctx.guard(on_preview, 1), [ctx.project_dd, mask, color, blend, forehead, sharpen, frame], [ctx.message])

    def on_render(name, mask_v, color_v, blend_v, forehead_v, sharpen_v):
        chosen = settings(mask_v, color_v, blend_v, forehead_v, sharpen_v)
        return ctx.start(name, "convert", lambda p: tasks.convert_job(p, chosen), "Render video")

    render_btn.click(ctx.guard(on_render, 1), [ctx.project_dd, mask, color, blend, forehead, sharpen], [ctx.message])

    def poll(p: Project, latest: dict[str, Any] | None, seen: dict[str, Any]) -> list[Any]:
        key = _mtime_key(p.preview_path) if p.preview_path.is_file() else None
        return [str(p.preview_path) if key and _changed(seen, "cprev", key) else gr.skip()]

    ctx.poll([preview], poll)


def result_page(ctx: Ctx) -> None:
    video = gr.Video(label="Result", interactive=False, height=480, elem_id="result-video")
    file = gr.File(label="Download", interactive=False, elem_id="result-file")
    box = gr.HTML(verify_html(None), elem_id="verify-box")
    btn = gr.Button("Verify again", elem_id="verify-btn")

    def on_verify(name):
        p = ctx.get(name)
        if not p.result_path.is_file():
            raise FacedubError("no result yet: render the video first")
        return verify_html(tasks.verify(p.result_path)), msg_ok("Verified.")

    btn.click(ctx.guard(on_verify, 2), [ctx.project_dd], [box, ctx.message])

    def poll(p: Project, latest: dict[str, Any] | None, seen: dict[str, Any]) -> list[Any]:
        out: list[Any] = [gr.skip()] * 3
        conv = latest if latest and latest.get("kind") in ("convert", "swap") else None
        conv = conv or ctx.jm.latest(p.root, "convert")
        if not p.result_path.is_file() or (conv is not None and conv.get("status") not in FINISHED):
            return out
        if _changed(seen, "result", _mtime_key(p.result_path)):
            out[0] = out[1] = str(p.result_path)
            report = (conv or {}).get("result") if conv and conv.get("status") == "done" else None
            out[2] = verify_html((report or {}).get("verify")) if report else verify_html(_safe_verify(p))
        return out

    ctx.poll([video, file, box], poll)
