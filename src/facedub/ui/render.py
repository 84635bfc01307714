"""Pieces of the web page as plain functions of the project and job state (unit-testable):
status boxes, badges, stage lists, plots. No Gradio layout here (see :mod:`facedub.ui.pages`)."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from facedub.errors import FacedubError
from facedub.project import Project
from facedub.ui import tasks

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


def verify_html(report: dict[str, Any] | None, elem_id: str = "verify-badge") -> str:
    """Badges for each provenance signal of the result (a ``VerifyReport.to_dict()``)."""
    if not report:
        return f'<div id="{elem_id}" data-watermark="unknown">Not verified yet.</div>'
    wm = report.get("watermark") or {}
    found = bool(wm.get("found"))
    badges = [
        f'<span class="fd-badge {"fd-ok" if found else "fd-bad"}">'
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
        f'<div id="{elem_id}" data-watermark="{"found" if found else "missing"}" data-marked="{str(bool(report.get("marked"))).lower()}">'
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


# --- the one-click Swap page ------------------------------------------------------------
# What each budget buys, from BENCHMARKS.md "Swap quality vs. training time" (bench_quality.py,
# `lite` on the shared synthetic pair, aiface1 -> aiface2, 2 CPU cores, 2026-12-02/03).
# Figures copied from that table; rerun the benchmark and update these together.
BUDGETS: tuple[tuple[int, str], ...] = (
    (10, "about 3,058 training steps; the face read as the source in 93 % of frames; expression follows the footage partly (ratio 0.82)"),
    (30, "about 8,888 steps; read as the source in 97 % of frames; expression ratio 0.64"),
    (60, "about 17,667 steps; read as the source in 100 % of frames; expression ratio 0.54 (the project's 60-minute goal was met)"),
)


def budget_md() -> str:
    rows = "\n".join(f"| {m} min | {_esc(text)} |" for m, text in BUDGETS)
    return (
        "What a training budget buys with the `lite` model on a 2-core CPU, measured on the shared synthetic pair "
        "(BENCHMARKS.md, *Swap quality vs. training time*; 0 = perfect expression, 1 = frozen face). "
        "Your footage and computer will differ; a GPU trains many times faster.\n\n"
        "| budget | measured result |\n|---|---|\n" + rows
    )


def stages_html(state: dict[str, Any] | None) -> str:
    """The swap job's stage list: done / running (with progress and ETA) / waiting."""
    if not state or state.get("kind") != "swap":
        return '<div id="swap-stages" data-status="none">Nothing run yet.</div>'
    st = state.get("status", "?")
    stages = state.get("stages") or []
    rows = []
    for sg in stages:
        mark = {"done": "✔", "running": "▶", "skipped": "↷", "stopped": "■"}.get(sg.get("status"), "·")
        line = f"<li data-stage='{_esc(sg.get('key'))}' data-state='{_esc(sg.get('status'))}'>{mark} {_esc(sg.get('name'))}"
        if sg.get("status") == "running" and st == "running":
            total, done = state.get("total"), state.get("done", 0)
            if total:
                line += f" <progress value='{int(done)}' max='{int(total)}'></progress> {int(done)} / {int(total)} {_esc(state.get('unit', ''))}"
            if state.get("eta_s") is not None:
                line += f" · about {_fmt_secs(state['eta_s'])} left"
        elif sg.get("seconds") is not None:
            line += f" <small>({_fmt_secs(sg['seconds'])})</small>"
        rows.append(line + "</li>")
    word = STATUS_WORDS.get(st, st)
    err = f'<div class="fd-msg err" id="swap-error">{_esc(state["error"])}</div>' if state.get("error") else ""
    return (
        f'<div id="swap-stages" data-status="{_esc(st)}" data-id="{_esc(state.get("id", ""))}">'
        f"<b>Swap</b> — {_esc(word)}<ul class='fd-stages'>{''.join(rows)}</ul>{err}</div>"
    )


def quality_md(summary: dict[str, Any] | None) -> str:
    """The swap's quality report (eval verdict and figures) as Markdown lines."""
    if not summary:
        return ""
    from facedub.swap import quality_lines

    lines = [f"**Model** {summary.get('arch')}, step {summary.get('model_step')}, {float(summary.get('train_minutes') or 0):.1f} min of training"]
    if summary.get("eval"):
        lines += [_esc(x.strip()) for x in quality_lines(summary["eval"], summary.get("verdict"))]
    else:
        lines.append("No quality report (evaluation did not run).")
    return "  \n".join(lines)


def before_after(target: str | Path, result: str | Path, out_png: Path, at: float = 0.33) -> str | None:
    """One frame of the target (before) beside the same frame of the result (after), as a PNG."""
    try:
        import av
        import numpy as np

        from facedub.fileio import write_png

        def frame_at(path: str | Path, index: int | None) -> tuple[Any, int]:
            with av.open(str(path)) as c:
                vs = c.streams.video[0]
                n = vs.frames or 0
                want = index if index is not None else int(max(0, n - 1) * at)
                last = None
                for i, f in enumerate(c.decode(vs)):
                    last = f.to_ndarray(format="rgb24")
                    if i >= want:
                        break
                return last, want

        after, idx = frame_at(result, None)
        before, _ = frame_at(target, idx)
        if before is None or after is None:
            return None
        if before.shape != after.shape:
            from PIL import Image

            before = np.asarray(Image.fromarray(before).resize((after.shape[1], after.shape[0])))
        gap = np.full((after.shape[0], 8, 3), 255, np.uint8)
        write_png(out_png, np.concatenate([before, gap, after], axis=1))
        return str(out_png)
    except Exception:  # a comparison picture must never fail the page
        return None
