"""The Gradio page of ``facedub ui``.

Five steps in tabs — consent, faces, train, convert, result — over one project folder
(:mod:`facedub.project`). Buttons that take long start a background job
(:mod:`facedub.ui.jobs`); a timer polls the job state from the project folder, so a reload
of the page picks up where it was. Every handler turns a facedub error into a plain
message; nothing here shows a traceback.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from facedub.errors import FacedubError
from facedub.project import (
    ROLES,
    Project,
    create_project,
    faceset_crops,
    import_upload,
    is_inside,
    list_projects,
    open_project,
    remove_faces,
    set_inputs,
)
from facedub.ui import tasks
from facedub.ui.jobs import FINISHED, JobManager
from facedub.ui.settings import UiSettings, check_quota

GALLERY_MAX = 300  # crops shown per faceset (the newest are cut when there are more)
TICK_S = 1.0

CSS = """
.fd-msg {font-size: 1.05em}
.fd-msg.err {color: #b00020}
.fd-badge {display:inline-block; padding:4px 10px; border-radius:6px; margin:2px 4px 2px 0; font-weight:600}
.fd-ok {background:#d8f5dc; color:#0b5d1e} .fd-bad {background:#fde2e1; color:#8a1111} .fd-mid {background:#fff2cc; color:#6b5200}
#job-status progress {width: 100%; height: 14px}
"""

STATUS_WORDS = {
    "running": "Running",
    "done": "Finished",
    "failed": "Failed",
    "refused": "Refused",
    "cancelled": "Stopped",
    "interrupted": "Interrupted",
}


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _fmt_secs(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def _fmt_num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def msg_ok(text: str) -> str:
    return f'<div class="fd-msg ok" id="fd-msg-ok">{_esc(text)}</div>'


def msg_err(text: str) -> str:
    return f'<div class="fd-msg err" id="fd-msg-err">{_esc(text)}</div>'


ERROR_LOG = "ui-errors.log"  # in the projects root: tracebacks of handler bugs (the page shows one line)


def _guard(fn: Callable[..., Any], n_out: int, log: Path | None = None) -> Callable[..., Any]:
    """Wrap a handler whose LAST output is the message box: errors become a plain message.
    An unexpected exception's traceback goes to ``log`` (not to the page)."""

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except FacedubError as e:
            out = [gr.skip()] * (n_out - 1) + [msg_err(str(e))]
        except Exception as e:  # a bug: still one line, no traceback
            first = str(e).splitlines()[0] if str(e) else ""
            text = f"internal error: {type(e).__name__}: {first}"
            if log is not None:
                try:
                    import traceback

                    with open(log, "a", encoding="utf-8") as f:
                        f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC {getattr(fn, '__name__', 'handler')}\n")
                        f.write(traceback.format_exc())
                    text += f" (details in {log.name})"
                except OSError:
                    pass
            out = [gr.skip()] * (n_out - 1) + [msg_err(text)]
        return out[0] if n_out == 1 else tuple(out)

    wrapper.__name__ = getattr(fn, "__name__", "handler")
    return wrapper


def _guarding(root: Path) -> Callable[[Callable[..., Any], int], Callable[..., Any]]:
    return lambda fn, n_out: _guard(fn, n_out, root / ERROR_LOG)


# --- pieces of the page, as plain functions of the job state (unit-testable) ------------
def job_html(state: dict[str, Any] | None) -> str:
    if not state:
        return '<div id="job-status" data-status="none">No job yet.</div>'
    st = state.get("status", "?")
    word = STATUS_WORDS.get(st, st)
    label = state.get("label") or state.get("kind", "")
    parts = [f'<div id="job-status" data-status="{_esc(st)}" data-kind="{_esc(state.get("kind", ""))}" data-id="{_esc(state.get("id", ""))}">']
    parts.append(f"<b>{_esc(label)}</b> — <span class='fd-status'>{_esc(word)}</span>")
    if state.get("phase"):
        parts.append(f" · {_esc(state['phase'])}")
    total, done = state.get("total"), state.get("done", 0)
    if st == "running":
        if total:
            parts.append(f"<br><progress value='{int(done)}' max='{int(total)}'></progress> {int(done)} / {int(total)} {_esc(state.get('unit', ''))}")
        else:
            parts.append(f"<br><progress></progress> {int(done)} {_esc(state.get('unit', ''))}")
        if state.get("rate"):
            parts.append(f" · {state['rate']:.3g} {_esc(state.get('unit', 'it'))}/s")
        if state.get("eta_s") is not None:
            parts.append(f" · about {_fmt_secs(state['eta_s'])} left")
        if state.get("stop_requested"):
            parts.append(" · stopping…")
    if state.get("error"):
        parts.append(f'<div class="fd-msg err" id="job-error">{_esc(state["error"])}</div>')
    notes = state.get("notes") or []
    if notes:
        parts.append("<div class='fd-notes'>" + "<br>".join(_esc(n) for n in notes[-5:]) + "</div>")
    parts.append("</div>")
    return "".join(parts)


def train_stats_md(state: dict[str, Any] | None) -> str:
    """Step, losses, examples/s and ETA of a training job."""
    if not state or state.get("kind") != "train":
        return ""
    m = dict(state.get("metrics") or {})
    step = m.pop("step", None) or state.get("done")
    total = state.get("total")
    parts = [f"**Step** {step}" + (f" (this run: {state.get('done')} of {total})" if total else "")]
    names = {"loss_src": "Loss source", "loss_tgt": "Loss target"}
    for k in ("loss_src", "loss_tgt"):
        if k in m:
            parts.append(f"**{names[k]}** {_fmt_num(m.pop(k))}")
    ex_s = m.pop("ex_s", None)
    if ex_s is not None:
        parts.append(f"**Examples/s** {_fmt_num(ex_s)}")
    elif state.get("rate"):
        parts.append(f"**Steps/s** {state['rate']:.3g}")
    eta = m.pop("eta", None)
    if state.get("status") == "running":
        parts.append(f"**ETA** {_esc(eta) if eta else _fmt_secs(state.get('eta_s'))}")
    for k, v in m.items():
        parts.append(f"**{_esc(k)}** {_fmt_num(v)}")
    res = state.get("result") or {}
    if res.get("val_ssim_source") is not None:
        parts.append(f"**Validation SSIM** source {res['val_ssim_source']:.3f}, target {res.get('val_ssim_target') or 0:.3f}")
    return " · ".join(parts)


def _find_image(state: dict[str, Any] | None, *words: str) -> str | None:
    if not state:
        return None
    for img in reversed(state.get("images") or []):
        cap = (img.get("caption") or "").lower() + " " + Path(img.get("path", "")).name.lower()
        if any(w in cap for w in words) and Path(img["path"]).is_file():
            return img["path"]
    return None


def loss_plot(state: dict[str, Any], out_png: Path) -> str | None:
    """A loss-curve PNG from the job's metric history (when the stage did not report one)."""
    hist = state.get("history") or []
    keys = sorted({k for h in hist for k, v in h.items() if k != "done" and "loss" in k and isinstance(v, (int, float))})
    if len(hist) < 2 or not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facedub.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(5, 3), dpi=80)
    for k in keys:
        pts = [(h.get("step", h["done"]), h[k]) for h in hist if isinstance(h.get(k), (int, float))]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out_png, ".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return str(out_png)


def verify_html(report: dict[str, Any] | None) -> str:
    """Badges for each provenance signal of the result (a ``VerifyReport.to_dict()``)."""
    if not report:
        return '<div id="verify-badge" data-watermark="unknown">Not verified yet.</div>'
    wm = report.get("watermark") or {}
    found = bool(wm.get("found"))
    badges = [
        f'<span class="fd-badge {"fd-ok" if found else "fd-bad"}" id="wm-badge">'
        f'{"Watermark found" if found else "No watermark found"}</span>'
    ]
    tags = report.get("tags") or {}
    badges.append(f'<span class="fd-badge {"fd-ok" if tags.get("found") else "fd-mid"}">Tags {"found" if tags.get("found") else "missing"}</span>')
    man = report.get("manifest") or {}
    if man.get("found"):
        man_txt, man_cls = "Manifest " + ("matches" if man.get("sha256_matches") else "found"), "fd-ok"
    else:
        man_txt, man_cls = "Manifest " + ("does not match" if man.get("present") else "missing"), "fd-mid"
    badges.append(f'<span class="fd-badge {man_cls}">{_esc(man_txt)}</span>')
    c2 = report.get("c2pa") or {}
    if c2.get("present"):
        c2_txt = f"C2PA {c2.get('validation_state') or 'present'}" + (", AI-generated" if c2.get("ai_generated") else "")
        c2_cls = "fd-ok" if c2.get("found") else "fd-mid"
    else:
        c2_txt, c2_cls = "C2PA none", "fd-mid"
    badges.append(f'<span class="fd-badge {c2_cls}" title="{_esc(", ".join(c2.get("failures") or []))}">{_esc(c2_txt)}</span>')
    detail = []
    if wm.get("bits_total"):
        detail.append(f"watermark: {wm.get('bits_agreeing')}/{wm.get('bits_total')} coded bits agreeing over {wm.get('frames')} frame(s)")
    if report.get("output_id"):
        detail.append(f"output id {report['output_id']}")
    if man.get("path") and man.get("present"):
        detail.append(f"manifest {Path(man['path']).name}")
    if c2.get("error"):
        detail.append(f"C2PA: {c2['error']}")
    return (
        f'<div id="verify-badge" data-watermark="{"found" if found else "missing"}" data-marked="{str(bool(report.get("marked"))).lower()}">'
        + " ".join(badges)
        + (f"<div class='fd-notes'>{_esc(' · '.join(detail))}</div>" if detail else "")
        + "</div>"
    )


def project_md(p: Project | None) -> str:
    if p is None:
        return "Create a project, or pick one above."
    s = p.summary()
    tick = lambda b: "✔" if b else "✘"  # noqa: E731
    return (
        f"**{_esc(s['name'])}** — consent: source {tick(s['consent']['source'])}, target {tick(s['consent']['target'])} · "
        f"faces: source {s['faces']['source']}, target {s['faces']['target']} · model {tick(s['model'])} · "
        f"result {tick(s['result'])}  \n<small>{_esc(p.root)}</small>"
    )


def consent_md(p: Project | None, role: str) -> str:
    if p is None:
        return ""
    try:
        rec = p.load_consent(role)
    except FacedubError as e:
        return str(e)
    if not rec:
        return f"No consent recorded for the {role} identity yet."
    bits = [f"**Recorded** for {_esc(rec.get('subject', '?'))}"]
    if rec.get("synthetic"):
        bits.append("(synthetic identity)")
    if rec.get("expires"):
        bits.append(f"· expires {_esc(rec['expires'])}")
    if rec.get("id"):
        bits.append(f"· id `{_esc(str(rec['id'])[:16])}`")
    return " ".join(bits)


def inputs_md(p: Project | None, role: str) -> str:
    if p is None:
        return ""
    files = p.input_files(role)
    if not files:
        return f"No {role} files chosen yet."
    return "Using: " + ", ".join(f"`{_esc(Path(f).name)}`" for f in files)


# --- the app ---------------------------------------------------------------------------
def build_app(projects_root: str | Path, jobs: JobManager | None = None, settings: UiSettings | None = None) -> gr.Blocks:
    root = Path(projects_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    jm = jobs or JobManager()
    cfg = settings or UiSettings()
    _guard = _guarding(root)
    ch = tasks.choices()
    conv_defaults = tasks.convert_settings(ch["mask"][0], ch["color"][0], ch["blend"][0])  # slider starting values

    def get(name: str | None) -> Project:
        if not name:
            raise FacedubError("create or open a project first")
        return open_project(root, name)

    def names() -> list[str]:
        return [p.name for p in list_projects(root)]

    def start(name: str, kind: str, fn_maker: Callable[[Project], Any], label: str) -> str:
        p = get(name)
        jm.start(p.root, kind, fn_maker(p), label)
        return msg_ok(f"{label}: started")

    # delete_cache: drop the app's served copies (previews, crops) older than a day, hourly
    with gr.Blocks(title="facedub", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        seen = gr.State({})
        gr.Markdown(
            "# facedub\nConsent-first face replacement. Every result carries an invisible watermark, "
            "an *AI-generated* label and a provenance manifest."
        )
        with gr.Row():
            project_dd = gr.Dropdown(choices=names(), value=None, label="Project", elem_id="project-dd", scale=2, interactive=True)
            new_name = gr.Textbox(label="New project name", placeholder="e.g. my-first-swap", elem_id="new-name", scale=2)
            create_btn = gr.Button("Create project", elem_id="create-btn", scale=1)
        project_info = gr.Markdown(project_md(None), elem_id="project-info")
        message = gr.HTML("", elem_id="message")
        with gr.Row():
            job_box = gr.HTML(job_html(None), elem_id="job-box")
            stop_btn = gr.Button("Stop job", variant="stop", elem_id="stop-btn", scale=0)

        with gr.Tabs():
            # 1. consent -------------------------------------------------------------------
            with gr.Tab("1 · Consent", id="tab-consent", elem_id="tab-consent"):
                gr.Markdown(
                    "Record who agreed to what, for both faces. Training refuses faces without a valid record. "
                    "Tick *synthetic* only for AI-generated faces that belong to no real person."
                )
                consent_widgets: dict[str, dict[str, Any]] = {}
                with gr.Row():
                    for role in ROLES:
                        with gr.Column():
                            gr.Markdown(f"### {role.capitalize()} identity" + (" (the face put in)" if role == "source" else " (the face replaced)"))
                            w = {
                                "subject": gr.Textbox(label="Subject (whose face)", elem_id=f"{role}-subject"),
                                "granted_by": gr.Textbox(label="Granted by", elem_id=f"{role}-granted-by"),
                                "scope": gr.Textbox(label="Scope (what it may be used for)", elem_id=f"{role}-scope"),
                                "expires": gr.Textbox(label="Expires (YYYY-MM-DD, empty = no expiry)", elem_id=f"{role}-expires"),
                                "evidence": gr.File(label="Evidence (signed release, recording)", type="filepath", height=110, elem_id=f"{role}-evidence"),
                                "synthetic": gr.Checkbox(label="Synthetic identity (AI-generated, no real person)", elem_id=f"{role}-synthetic"),
                            }
                            w["save"] = gr.Button(f"Save {role} consent", elem_id=f"{role}-consent-save")
                            w["status"] = gr.Markdown("", elem_id=f"{role}-consent-status")
                            consent_widgets[role] = w

            # 2. faces ---------------------------------------------------------------------
            with gr.Tab("2 · Faces", id="tab-faces", elem_id="tab-faces"):
                gr.Markdown("Choose videos (upload, or a path on this computer), extract the faces, and remove bad crops before training.")
                with gr.Row():
                    every = gr.Number(value=1, precision=0, minimum=1, label="Use every Nth frame", elem_id="extract-every")
                    max_frames = gr.Number(value=0, precision=0, minimum=0, label="At most this many frames per video (0 = all)", elem_id="extract-max-frames")
                face_widgets: dict[str, dict[str, Any]] = {}
                with gr.Row():
                    for role in ROLES:
                        with gr.Column():
                            gr.Markdown(f"### {role.capitalize()}")
                            w = {
                                "upload": gr.File(label=f"Upload {role} video(s) or images", file_count="multiple", type="filepath", elem_id=f"{role}-upload"),
                                "path": gr.Textbox(label="…or a path on this computer (one per line)", lines=2, elem_id=f"{role}-path",
                                                   visible=cfg.paths_enabled),
                            }
                            w["use"] = gr.Button(f"Use these {role} files", elem_id=f"{role}-use")
                            w["inputs"] = gr.Markdown("", elem_id=f"{role}-inputs")
                            w["extract"] = gr.Button(f"Extract {role} faces", variant="primary", elem_id=f"{role}-extract")
                            w["gallery"] = gr.Gallery(label=f"{role} faces (click to select)", columns=6, height=320, allow_preview=False, elem_id=f"{role}-gallery")
                            w["selected"] = gr.State([])  # crop names picked for removal
                            w["files"] = gr.State([])  # crop names in gallery order
                            w["selected_md"] = gr.Markdown("", elem_id=f"{role}-selected")
                            with gr.Row():
                                w["remove"] = gr.Button("Remove selected faces", elem_id=f"{role}-remove")
                                w["clear"] = gr.Button("Clear selection", elem_id=f"{role}-clear")
                            face_widgets[role] = w

            # 3. train ---------------------------------------------------------------------
            with gr.Tab("3 · Train", id="tab-train", elem_id="tab-train"):
                with gr.Row():
                    arch = gr.Dropdown(choices=list(ch["arch"]), value="lite" if "lite" in ch["arch"] else ch["arch"][0], label="Model", elem_id="train-arch")
                    steps = gr.Number(value=2000, precision=0, minimum=1, label="Steps", elem_id="train-steps")
                    batch = gr.Number(value=16, precision=0, minimum=1, label="Batch size", elem_id="train-batch")
                    preview_every = gr.Number(value=100, precision=0, minimum=1, label="Preview every N steps", elem_id="train-preview-every")
                    resume = gr.Checkbox(value=True, label="Continue the saved model when there is one", elem_id="train-resume")
                train_btn = gr.Button("Start training", variant="primary", elem_id="train-btn")
                train_stats = gr.Markdown("", elem_id="train-stats")
                with gr.Row():
                    train_preview = gr.Image(label="Preview grid", type="filepath", interactive=False, elem_id="train-preview")
                    train_loss = gr.Image(label="Loss", type="filepath", interactive=False, elem_id="train-loss")

            # 4. convert -------------------------------------------------------------------
            with gr.Tab("4 · Convert", id="tab-convert", elem_id="tab-convert"):
                with gr.Row():
                    mask = gr.Dropdown(choices=list(ch["mask"]), value=ch["mask"][0], label="Mask", elem_id="conv-mask")
                    color = gr.Dropdown(choices=list(ch["color"]), value=ch["color"][0], label="Colour", elem_id="conv-color")
                    blend = gr.Dropdown(choices=list(ch["blend"]), value=ch["blend"][0], label="Blend", elem_id="conv-blend")
                    frame = gr.Number(value=0, precision=0, minimum=0, label="Preview frame", elem_id="conv-frame")
                with gr.Row():
                    forehead = gr.Slider(
                        0.0, 1.0, value=conv_defaults.forehead, step=0.05, label="Forehead (how far the new face reaches above the brows; 0 keeps a fringe of hair)", elem_id="conv-forehead"
                    )
                    sharpen = gr.Slider(0.0, 3.0, value=conv_defaults.sharpen, step=0.1, label="Sharpen the new face (0 = off)", elem_id="conv-sharpen")
                with gr.Row():
                    preview_btn = gr.Button("Preview this frame", elem_id="preview-btn")
                    render_btn = gr.Button("Render video", variant="primary", elem_id="render-btn")
                conv_preview = gr.Image(label="Before / after", type="filepath", interactive=False, elem_id="conv-preview")

            # 5. result --------------------------------------------------------------------
            with gr.Tab("5 · Result", id="tab-result", elem_id="tab-result"):
                result_video = gr.Video(label="Result", interactive=False, height=480, elem_id="result-video")
                result_file = gr.File(label="Download", interactive=False, elem_id="result-file")
                verify_box = gr.HTML(verify_html(None), elem_id="verify-box")
                verify_btn = gr.Button("Verify again", elem_id="verify-btn")

        timer = gr.Timer(TICK_S)

        # ---- handlers -------------------------------------------------------------------
        def on_create(name: str):
            p = create_project(root, name)
            return gr.update(choices=names(), value=p.name), "", msg_ok(f"Project {p.name} is ready.")

        create_btn.click(_guard(on_create, 3), [new_name], [project_dd, new_name, message])

        def on_open(name: str | None):
            p = get(name) if name else None
            outs: list[Any] = [project_md(p), {}]
            for role in ROLES:
                items, files = gallery(p, role)
                outs += [consent_md(p, role), inputs_md(p, role), items, files, [], ""]
            outs.append("")
            return tuple(outs)

        open_outputs: list[Any] = [project_info, seen]
        for role in ROLES:
            fw = face_widgets[role]
            open_outputs += [consent_widgets[role]["status"], fw["inputs"], fw["gallery"], fw["files"], fw["selected"], fw["selected_md"]]
        open_outputs.append(message)
        project_dd.change(_guard(on_open, len(open_outputs)), [project_dd], open_outputs)

        def gallery(p: Project | None, role: str) -> tuple[list[tuple[str, str]], list[str]]:
            """Gallery items (path, caption) and the crop names in the same order."""
            if p is None:
                return [], []
            crops = faceset_crops(p.faceset_dir(role))[:GALLERY_MAX]
            return [(str(path), f"frame {frame}") for path, _rel, frame in crops], [rel for _p, rel, _f in crops]

        for role in ROLES:
            cw, fw = consent_widgets[role], face_widgets[role]

            def on_consent(name, subject, granted_by, scope, expires, evidence, synthetic, _role=role):
                p = get(name)
                check_quota(cfg, p.root, [evidence] if evidence else [])
                tasks.record_consent(p, _role, subject, granted_by, scope, expires, evidence, synthetic)
                return consent_md(p, _role), project_md(p), msg_ok(f"{_role.capitalize()} consent saved.")

            cw["save"].click(
                _guard(on_consent, 3),
                [project_dd, cw["subject"], cw["granted_by"], cw["scope"], cw["expires"], cw["evidence"], cw["synthetic"]],
                [cw["status"], project_info, message],
            )

            def on_use(name, uploads, path_text, _role=role):
                p = get(name)
                files: list[str] = []
                typed = [cfg.check_local_path(line.strip()) for line in (path_text or "").splitlines() if line.strip()]
                ups = [up if isinstance(up, str) else getattr(up, "name", str(up)) for up in uploads or []]
                check_quota(cfg, p.root, ups)
                for up_path in ups:
                    files.append(str(import_upload(p, _role, up_path)))
                files.extend(typed)
                if not files:
                    raise FacedubError(f"{_role}: upload a file or type a path first")
                p = set_inputs(p, _role, files)
                return inputs_md(p, _role), project_md(p), msg_ok(f"{len(files)} {_role} file(s) chosen.")

            fw["use"].click(_guard(on_use, 3), [project_dd, fw["upload"], fw["path"]], [fw["inputs"], project_info, message])

            def on_extract(name, every_n, maxf, _role=role):
                return start(name, "extract", lambda p: tasks.extract_job(p, _role, int(every_n or 1), int(maxf or 0) or None), f"Extract {_role} faces")

            fw["extract"].click(_guard(on_extract, 1), [project_dd, every, max_frames], [message])

            def on_select(selected: list[str], files: list[str], evt: gr.SelectData, _role=role):
                i = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else None)
                if i is None or not files or not 0 <= i < len(files):
                    return gr.skip(), gr.skip()
                name = files[i]
                sel = list(selected or [])
                if name in sel:
                    sel.remove(name)
                else:
                    sel.append(name)
                shown = ", ".join(Path(n).stem for n in sel[:8]) + (" …" if len(sel) > 8 else "")
                return sel, (f"Selected {len(sel)}: {shown}" if sel else "")

            fw["gallery"].select(on_select, [fw["selected"], fw["files"]], [fw["selected"], fw["selected_md"]])

            def on_remove(name, selected, _role=role):
                p = get(name)
                if jm.active(p.root) is not None:
                    raise FacedubError("wait for the running job to finish before removing faces")
                if not selected:
                    raise FacedubError("click the faces to remove first")
                remove_faces(p.faceset_dir(_role), selected)
                items, files = gallery(p, _role)
                return items, files, [], "", project_md(p), msg_ok(f"Removed {len(selected)} {_role} face(s); extraction will not add them back.")

            fw["remove"].click(
                _guard(on_remove, 6), [project_dd, fw["selected"]],
                [fw["gallery"], fw["files"], fw["selected"], fw["selected_md"], project_info, message],
            )
            fw["clear"].click(lambda: ([], ""), None, [fw["selected"], fw["selected_md"]])

        def on_train(name, arch_v, steps_v, batch_v, prev_v, resume_v):
            return start(
                name, "train",
                lambda p: tasks.train_job(p, arch_v, int(steps_v or 1), int(batch_v or 0) or None, bool(resume_v), int(prev_v or 0) or None),
                "Training",
            )

        train_btn.click(_guard(on_train, 1), [project_dd, arch, steps, batch, preview_every, resume], [message])

        def settings(mask_v, color_v, blend_v, forehead_v, sharpen_v) -> dict[str, Any]:
            return {"mask": mask_v, "color": color_v, "blend": blend_v, "forehead": forehead_v, "sharpen": sharpen_v}

        def on_preview(name, mask_v, color_v, blend_v, forehead_v, sharpen_v, frame_v):
            chosen = settings(mask_v, color_v, blend_v, forehead_v, sharpen_v)
            return start(name, "preview", lambda p: tasks.preview_job(p, int(frame_v or 0), chosen), "Preview frame")

        preview_btn.click(_guard(on_preview, 1), [project_dd, mask, color, blend, forehead, sharpen, frame], [message])

        def on_render(name, mask_v, color_v, blend_v, forehead_v, sharpen_v):
            chosen = settings(mask_v, color_v, blend_v, forehead_v, sharpen_v)
            return start(name, "convert", lambda p: tasks.convert_job(p, chosen), "Render video")

        render_btn.click(_guard(on_render, 1), [project_dd, mask, color, blend, forehead, sharpen], [message])

        def on_stop(name):
            p = get(name)
            return msg_ok("Stopping…") if jm.stop(p.root) else msg_ok("No job is running.")

        stop_btn.click(_guard(on_stop, 1), [project_dd], [message])

        def on_verify(name):
            p = get(name)
            if not p.result_path.is_file():
                raise FacedubError("no result yet: render the video first")
            return verify_html(tasks.verify(p.result_path)), msg_ok("Verified.")

        verify_btn.click(_guard(on_verify, 2), [project_dd], [verify_box, message])

        # ---- the poll -------------------------------------------------------------------
        tick_outputs = [job_box, train_stats, train_preview, train_loss, conv_preview, result_video, result_file, verify_box,
                        face_widgets["source"]["gallery"], face_widgets["source"]["files"],
                        face_widgets["target"]["gallery"], face_widgets["target"]["files"], project_info, seen]

        def on_tick(name: str | None, seen_v: dict[str, Any]):
            skip = gr.skip()
            if not name:
                return (job_html(None),) + (skip,) * (len(tick_outputs) - 2) + (seen_v,)
            try:
                p = get(name)
            except FacedubError:
                return (skip,) * (len(tick_outputs) - 1) + (seen_v,)
            seen_v = dict(seen_v or {})
            state = jm.latest(p.root)
            out: dict[str, Any] = {k: skip for k in ("stats", "tprev", "tloss", "cprev", "video", "file", "verify", "gsrc", "fsrc", "gtgt", "ftgt", "info")}
            key = json.dumps([state.get("id"), state.get("updated"), state.get("status"), state.get("done")]) if state else "none"
            job = job_html(state)
            if seen_v.get("job") == key:
                job = skip
            seen_v["job"] = key
            train_state = jm.latest(p.root, "train")
            if train_state:
                tkey = f"{train_state.get('id')}:{train_state.get('updated')}"
                if seen_v.get("train") != tkey:
                    seen_v["train"] = tkey
                    out["stats"] = train_stats_md(train_state)
                    pv = _find_image(train_state, "preview", "grid")
                    if pv and seen_v.get("tprev") != f"{pv}:{Path(pv).stat().st_mtime}":
                        seen_v["tprev"] = f"{pv}:{Path(pv).stat().st_mtime}"
                        out["tprev"] = pv
                    lp = _find_image(train_state, "loss")
                    if lp is None and time.time() - seen_v.get("tloss_t", 0) > 5:
                        seen_v["tloss_t"] = time.time()
                        lp = loss_plot(train_state, p.jobs_dir / f"{train_state['id']}-loss.png")
                    if lp and seen_v.get("tloss") != f"{lp}:{Path(lp).stat().st_mtime}":
                        seen_v["tloss"] = f"{lp}:{Path(lp).stat().st_mtime}"
                        out["tloss"] = lp
            if p.preview_path.is_file():
                pkey = str(p.preview_path.stat().st_mtime)
                if seen_v.get("cprev") != pkey:
                    seen_v["cprev"] = pkey
                    out["cprev"] = str(p.preview_path)
            if state and state.get("status") in FINISHED:
                fin_key = f"{state.get('id')}:{state.get('status')}"
                if seen_v.get("finished") != fin_key:
                    seen_v["finished"] = fin_key
                    out["info"] = project_md(p)
                    if state.get("kind") == "extract":
                        out["gsrc"], out["fsrc"] = gallery(p, "source")
                        out["gtgt"], out["ftgt"] = gallery(p, "target")
            conv_state = jm.latest(p.root, "convert")
            if p.result_path.is_file() and (conv_state is None or conv_state.get("status") in FINISHED):
                rkey = str(p.result_path.stat().st_mtime)
                if seen_v.get("result") != rkey:
                    seen_v["result"] = rkey
                    out["video"] = str(p.result_path)
                    out["file"] = str(p.result_path)
                    report = (conv_state or {}).get("result", {}) if conv_state and conv_state.get("status") == "done" else None
                    out["verify"] = verify_html((report or {}).get("verify")) if report else verify_html(_safe_verify(p))
            return (job, out["stats"], out["tprev"], out["tloss"], out["cprev"], out["video"], out["file"], out["verify"],
                    out["gsrc"], out["fsrc"], out["gtgt"], out["ftgt"], out["info"], seen_v)

        timer.tick(on_tick, [project_dd, seen], tick_outputs, show_progress="hidden")

        def on_load(request: gr.Request):
            choices_now = names()
            want = None
            try:
                want = request.query_params.get("project") if request else None
            except Exception:
                want = None
            if want not in choices_now:
                want = _most_recent(root, choices_now)
            return gr.update(choices=choices_now, value=want)

        demo.load(on_load, None, [project_dd])
    return demo


def _safe_verify(p: Project) -> dict[str, Any] | None:
    try:
        return tasks.verify(p.result_path)
    except Exception:
        return None


def _most_recent(root: Path, names: list[str]) -> str | None:
    best, best_t = None, -1.0
    for n in names:
        folder = root / n
        t = max((f.stat().st_mtime for f in [folder / "project.json", *(folder / "jobs").glob("*.json")] if f.exists()), default=0.0)
        if t > best_t:
            best, best_t = n, t
    return best


__all__ = ["build_app", "job_html", "verify_html", "train_stats_md", "is_inside"]
