"""One self-contained HTML file for an :class:`~facedub.evaluate.core.EvalReport`.

Numbers, matplotlib plots over time and a strip of before/after frames; every image is an
inline base64 PNG and the styling is inline, so the file opens offline and can be mailed.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from facedub.fileio import write_bytes

if TYPE_CHECKING:
    from facedub.evaluate.core import EvalReport


def _png_b64(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fig_b64(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _series(report: "EvalReport", name: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in report.frames:
        v = getattr(r, name)
        if v is not None and math.isfinite(v):
            xs.append(r.time)
            ys.append(v)
    return np.array(xs), np.array(ys)


def plots(report: "EvalReport") -> list[tuple[str, str]]:
    """(caption, base64 PNG) for each plot over time."""
    from matplotlib.figure import Figure

    out: list[tuple[str, str]] = []

    def panel(caption: str, lines: Sequence[tuple[str, str, str]], ylabel: str, hline: tuple[float, str] | None = None, marker: str = "") -> None:
        fig = Figure(figsize=(9, 2.6))
        ax = fig.add_subplot(1, 1, 1)
        drawn = False
        for field, label, style in lines:
            x, y = _series(report, field)
            if len(x):
                ax.plot(x, y, style, label=label, linewidth=1.2, markersize=3, marker=marker or None)
                drawn = True
        if hline is not None:
            ax.axhline(hline[0], color="grey", linestyle="--", linewidth=1, label=hline[1])
        if not drawn:
            ax.text(0.5, 0.5, "not measured (no faces)", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(loc="best", fontsize=8)
        out.append((caption, _fig_b64(fig)))

    threshold = report.summary.identity_threshold
    bounds = (report.summary.verdict or {}).get("bounds") or {}

    panel(
        f"Identity: descriptor distance of the output face (every {report.sampled_every}th frame). "
        "Below the dashed line and below the orange curve = reads as the source.",
        [("dist_source", "to source", "-"), ("dist_target", "to target", "-"), ("target_dist_source", "target face to source (baseline)", ":")],
        "distance",
        (threshold, f"same person ({threshold})"),
        marker="o",
    )
    panel(
        "Sharpness: detail of the new inner face ÷ the footage's own face (1 = as sharp; below the dashed line = visibly soft).",
        [("sharpness_ratio", "output ÷ target", "-")],
        "ratio",
        (bounds["min_sharpness"], f"usable ≥ {bounds['min_sharpness']}") if "min_sharpness" in bounds else None,
    )
    panel(
        "Paste edge: colour step along the border of the pasted face that the input did not have (lower is better).",
        [("seam_delta_e", "seam", "-")],
        "ΔE (L*a*b*)",
        (bounds["max_seam"], f"usable ≤ {bounds['max_seam']}") if "max_seam" in bounds else None,
    )
    panel(
        "Expression error (lower is better) against the target's own expression motion (what a frozen face would score).",
        [("expression_error", "expression error", "-"), ("expression_error_static", "static (incl. build)", ":"), ("expression_motion", "target motion (baseline)", "--")],
        "per inter-ocular dist.",
    )
    panel("Head pose error (lower is better).", [("pose_error", "rotation angle", "-"), ("yaw_error", "yaw", ":"), ("pitch_error", "pitch", ":"), ("roll_error", "roll", ":")], "degrees")
    panel("Landmark jitter, output vs input (output above input = less stable).", [("landmark_jitter_output", "output", "-"), ("landmark_jitter_target", "input", "-")], "per inter-ocular dist.")
    panel("Pixel jitter in the face region, output vs input.", [("pixel_jitter_output", "output", "-"), ("pixel_jitter_target", "input", "-")], "grey levels")
    panel("Background PSNR outside the face mask (higher is better; capped at 100 dB).", [("background_psnr", "PSNR", "-")], "dB")
    return out


def _fmt(v: Any, spec: str = ".3f", suffix: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        return f"{v:{spec}}{suffix}"
    return f"{v}{suffix}"


def summary_rows(report: "EvalReport") -> list[tuple[str, str, str]]:
    """(metric, value, how to read it) rows of the summary table (also used by the CLI text output)."""
    s = report.summary
    share = None if s.source_share is None else 100.0 * s.source_share
    v = s.verdict or {}
    b = v.get("bounds") or {}
    rows = []
    if v:
        rows.append(("verdict", str(v.get("text", "")), ""))
        rows.extend(("next", h, "") for h in v.get("hints", ()))
    seam = s.seam_delta_e
    return rows + [
        ("frames compared", f"{s.frames_compared} (face in target: {s.frames_target_face}, in output: {s.frames_output_face})", ""),
        (
            "reads as source",
            _fmt(share, ".1f", " %") + f" of {s.identity_frames} sampled frames",
            f"usable ≥ {_fmt(100 * b['min_identity'] if 'min_identity' in b else None, '.0f', ' %')}; a frame counts when within {s.identity_threshold} of the source and closer to it than to the target",
        ),
        (
            "sharpness ratio",
            f"{_fmt(s.sharpness_ratio, '.2f', '×')} (median of {s.sharpness.get('count', 0)} frames; min {_fmt(s.sharpness.get('min'), '.2f')}, max {_fmt(s.sharpness.get('max'), '.2f')})",
            f"usable ≥ {_fmt(b.get('min_sharpness'), '.2f')}; detail of the new inner face ÷ the footage's own, 1 = as sharp",
        ),
        (
            "expression ratio",
            _fmt(s.expression_error_ratio, ".2f", "×"),
            f"usable ≤ {_fmt(b.get('max_expression'), '.2f')}; expression error ÷ the target's own motion: 0 = follows it, ≈1 = frozen face",
        ),
        (
            "paste edge (seam)",
            f"{_fmt(seam.get('median'), '.1f', ' ΔE')} (p95 {_fmt(seam.get('p95'), '.1f', ' ΔE')})",
            f"usable ≤ {_fmt(b.get('max_seam'), '.1f')}; colour step along the paste border the input did not have; ≈2.3 = just noticeable",
        ),
        ("distance to source", _fmt(s.dist_source_mean), f"lower is better; < {s.identity_threshold} = same person for facedub"),
        ("distance to target", _fmt(s.dist_target_mean), "higher is better; ~0 = the target face is unchanged"),
        ("target vs source (baseline)", _fmt(s.target_dist_source_mean), "how different the two people are"),
        ("expression error", f"{_fmt(s.expression_error.get('mean'), '.4f')} (p95 {_fmt(s.expression_error.get('p95'), '.4f')}; {_fmt(s.expression_error_ratio, '.2f', '×')} the target's own motion {_fmt(s.expression_motion_mean, '.4f')})", "lower is better; 0 = same movements, ~1× = no better than a frozen face"),
        ("expression error, static", _fmt(s.expression_error_static_mean, ".4f"), "shape difference incl. the people's build; 0 = same landmarks"),
        ("head pose error", f"{_fmt(s.pose_error.get('mean'), '.2f', '°')} (yaw {_fmt(s.yaw_error_mean, '.2f', '°')}, pitch {_fmt(s.pitch_error_mean, '.2f', '°')}, roll {_fmt(s.roll_error_mean, '.2f', '°')})", "lower is better"),
        ("landmark jitter ratio", _fmt(s.landmark_jitter_ratio, ".2f", "×"), "1.0 = as stable as the input; higher = shakier"),
        ("pixel jitter ratio", _fmt(s.pixel_jitter_ratio, ".2f", "×"), "1.0 = as stable as the input; higher = flicker"),
        ("background PSNR", f"{_fmt(s.background_psnr.get('mean'), '.1f', ' dB')} (min {_fmt(s.background_psnr.get('min'), '.1f', ' dB')})", "higher is better; > 40 dB = untouched up to re-encoding"),
        ("time", _fmt(s.seconds, ".1f", " s"), ""),
    ]


def render_html(report: "EvalReport", strip: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> str:
    e = html.escape
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td><td class=h>{e(h)}</td></tr>" for k, v, h in summary_rows(report))
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    v = report.summary.verdict or {}
    verdict_html = ""
    if v:
        cls = "ok" if v.get("usable") else "bad"
        hints = "".join(f"<li>{e(h)}</li>" for h in v.get("hints", ()))
        verdict_html = f'<div class="verdict {cls}"><strong>{e(str(v.get("text", "")))}</strong>{f"<p>What to do next:</p><ul>{hints}</ul>" if hints else ""}</div>'

    figs = "".join(f'<figure><img alt="{e(c)}" src="data:image/png;base64,{b}"><figcaption>{e(c)}</figcaption></figure>' for c, b in plots(report))
    by_index = {r.index: r for r in report.frames}
    cells = []
    for idx, before, after in strip:
        r = by_index.get(idx)
        info = []
        if r is not None:
            if r.dist_source is not None:
                info.append(f"to source {r.dist_source:.2f}")
            if r.sharpness_ratio is not None:
                info.append(f"sharpness {r.sharpness_ratio:.2f}")
            if r.seam_delta_e is not None:
                info.append(f"seam {r.seam_delta_e:.1f}")
            if r.expression_error is not None:
                info.append(f"expr {r.expression_error:.3f}")
            if r.reads_as_source is not None:
                info.append("reads as source" if r.reads_as_source else "not the source")
        cells.append(
            f'<div class=pair><img alt="target frame {idx}" src="data:image/png;base64,{_png_b64(before)}">'
            f'<img alt="output frame {idx}" src="data:image/png;base64,{_png_b64(after)}">'
            f"<div>frame {idx} · {e(' · '.join(info))}</div></div>"
        )
    strip_html = "".join(cells) or "<p>no frames</p>"
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>facedub eval: {e(os.path.basename(report.output))}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}} th,td{{text-align:left;padding:.3em .8em;border-bottom:1px solid #ddd}}
td.h{{color:#666;font-size:.9em}} figure{{margin:1.2em 0}} figure img{{max-width:100%}}
figcaption{{color:#555;font-size:.9em}} .strip{{display:flex;flex-wrap:wrap;gap:1em}}
.verdict{{padding:.6em 1em;border-radius:4px;margin:1em 0}} .verdict.ok{{background:#e6f4e6;border:1px solid #7a7}} .verdict.bad{{background:#fbeaea;border:1px solid #c77}}
.pair{{font-size:.8em;color:#444}} .pair img{{display:inline-block;margin-right:2px}} code{{background:#f3f3f3;padding:0 .3em}}
</style></head><body>
<h1>facedub eval</h1>
<p>output <code>{e(report.output)}</code><br>target <code>{e(report.target)}</code><br>source faceset <code>{e(report.source_faceset)}</code></p>
<p>Landmark metrics, sharpness and seam on every compared frame; identity on every {report.sampled_every}th frame.</p>
{verdict_html}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Summary</h2><table>{rows}</table>
<h2>Over time</h2>{figs}
<h2>Before / after</h2><p>Each pair: target frame (left), output frame (right).</p><div class=strip>{strip_html}</div>
</body></html>
"""


def write_html_report(report: "EvalReport", strip: Sequence[tuple[int, np.ndarray, np.ndarray]], path: str | os.PathLike[str]) -> None:
    """Write the report atomically."""
    write_bytes(path, render_html(report, strip).encode("utf-8"))
