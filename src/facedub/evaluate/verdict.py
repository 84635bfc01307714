"""The verdict: would a viewer call this a swap? One line, the reasons, and what to do next.

A swap is called *usable* only when every figure a viewer would notice is within bounds at
once: the face reads as the source person, it carries about as much detail as the footage's
own face (so a blur cannot pass, however well it scores on identity), it moves with the
target's expression, its paste edge does not show, and it does not shake. Pure functions on
the figures of an :class:`~facedub.evaluate.core.EvalSummary` (or its JSON dict).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class QualityBounds:
    """What "usable" requires. Ratios compare the output with the target video it was made from."""

    min_identity: float = 0.90  # share of sampled frames whose face reads as the source
    min_sharpness: float = 0.60  # detail of the new inner face ÷ the footage's own (median over frames)
    max_expression: float = 0.50  # expression error ÷ the target's own expression motion (≈1 = a frozen face)
    max_seam: float = 5.0  # colour step along the paste border, ΔE (median over frames)
    max_jitter: float = 1.5  # landmark jitter ÷ the input's


@dataclass(frozen=True)
class Training:
    """What the model has had, when the caller knows it (swap, the demo): makes the hint concrete."""

    minutes: float | None = None
    steps: int | None = None
    arch: str | None = None
    by_steps: bool = False  # the budget was given in steps (--steps), not minutes


@dataclass(frozen=True)
class Verdict:
    usable: bool
    text: str  # one line: "usable" or "not yet usable: <reasons>" (or "no verdict: ...")
    reasons: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()  # what to do next, most useful first
    bounds: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ok(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _next_budget(training: Training | None) -> str:
    if training is not None and training.by_steps and training.steps:
        return f"train longer: --steps {2 * training.steps} in total (the model has {training.steps} steps; the same command resumes)"
    if training is not None and training.minutes is not None:
        m = training.minutes
        total = max(60, int(5 * math.ceil(2 * m / 5)))
        steps = f", {training.steps} steps" if training.steps else ""
        return f"train longer: --minutes {total} in total (the model has had {m:.0f} min{steps}; running the same command again resumes)"
    return "train longer: about twice the steps so far (facedub train --resume --minutes M, or swap again with a larger --minutes)"


def judge(
    *,
    identity: float | None,
    sharpness: float | None,
    expression: float | None,
    seam: float | None,
    jitter: float | None,
    dist_target: float | None = None,
    faces: bool = True,
    bounds: QualityBounds = QualityBounds(),
    training: Training | None = None,
) -> Verdict:
    """Verdict from the headline figures (None = not measured).

    Identity, sharpness and expression must be measured to pass; seam and jitter block only
    when measured and out of bounds (a very short clip has no jitter figure).
    """
    b = bounds
    bd = asdict(b)
    if not faces:
        return Verdict(False, "no verdict: no face was found in the target video", bounds=bd)
    reasons: list[str] = []
    hints: list[str] = []
    train = False
    if not _ok(identity):
        reasons.append("identity not measured")
        train = True
    elif identity < b.min_identity:  # type: ignore[operator]
        reasons.append(f"reads as the source in only {100 * identity:.0f} % of frames (needs ≥ {100 * b.min_identity:.0f} %)")  # type: ignore[operator]
        train = True
        if _ok(dist_target) and dist_target < 0.2:  # type: ignore[operator]
            hints.append(
                f"the output face is still almost the target's own (distance {dist_target:.2f}): check that the "
                "model was trained on these two people and convert ran in the right direction (--reverse)"
            )
    if not _ok(sharpness):
        reasons.append("sharpness not measured")
    elif sharpness < b.min_sharpness:  # type: ignore[operator]
        reasons.append(f"the face is blurred: {sharpness:.2f}× the footage's own detail (needs ≥ {b.min_sharpness:.2f})")
        train = True
    if not _ok(expression):
        reasons.append("expression not measured")
    elif expression > b.max_expression:  # type: ignore[operator]
        reasons.append(
            f"the expression follows only part of the target's: error {expression:.2f}× the target's own motion "
            f"(needs ≤ {b.max_expression:.2f}; ≈1 = a frozen face)"
        )
        train = True
    if _ok(seam) and seam > b.max_seam:  # type: ignore[operator]
        reasons.append(f"the paste edge shows: a colour step of {seam:.1f} ΔE along the border (needs ≤ {b.max_seam:.1f})")
    if _ok(jitter) and jitter > b.max_jitter:  # type: ignore[operator]
        reasons.append(f"the face shakes: landmark jitter {jitter:.2f}× the input's (needs ≤ {b.max_jitter:.2f})")

    if train:
        hints.insert(0, _next_budget(training))
    if _ok(sharpness) and sharpness < b.min_sharpness:  # type: ignore[operator]
        hints.append("for detail: --sharpen 0.5–1 sharpens the decoded face before it is scaled up (a small gain: it cannot add what the model has not learned)")
        if training is not None and training.arch == "lite":
            hints.append("lite decodes an 80 px face and scales it up about 5× at 512²; with a CUDA GPU, --arch hd decodes at 128 px")
    if _ok(seam) and seam > b.max_seam:  # type: ignore[operator]
        hints.append(
            "for the edge: --color hist or --blend poisson match the colours along the border; a wider --feather PX "
            "(facedub convert) spreads the step; where the outline crosses hair above the brows, --forehead 0 stops it at the brows"
        )
    if _ok(jitter) and jitter > b.max_jitter:  # type: ignore[operator]
        hints.append("for the shaking: convert with --smooth one-euro (the default)")

    if reasons:
        return Verdict(False, "not yet usable: " + "; ".join(reasons), tuple(reasons), tuple(hints), bd)
    return Verdict(True, "usable", (), (), bd)


def judge_summary(summary: Any, bounds: QualityBounds = QualityBounds(), training: Training | None = None) -> Verdict:
    """:func:`judge` on an ``EvalSummary`` or its JSON dict."""
    get = summary.get if isinstance(summary, Mapping) else (lambda k, d=None: getattr(summary, k, d))
    return judge(
        identity=get("source_share"),
        sharpness=get("sharpness_ratio"),
        expression=get("expression_error_ratio"),
        seam=(get("seam_delta_e") or {}).get("median"),
        jitter=get("landmark_jitter_ratio"),
        dist_target=get("dist_target_mean"),
        faces=bool(get("frames_target_face")),
        bounds=bounds,
        training=training,
    )
