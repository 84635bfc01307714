"""The one-click Swap page: its job's stage list, its refusals, and its pieces."""

from __future__ import annotations

import html

import pytest

gr = pytest.importorskip("gradio", reason="gradio (facedub[ui]) not installed")

from facedub.errors import BadInput  # noqa: E402
from facedub.project import create_project, set_inputs  # noqa: E402
from facedub.ui import tasks  # noqa: E402
from facedub.ui.jobs import JobManager  # noqa: E402
from facedub.ui.render import quality_md, stages_html  # noqa: E402


def test_stage_list_follows_the_chain(tmp_path):
    """The phases and notes run_swap's stages report move the list along; skipped stages show."""
    jm = JobManager()

    def fake_chain(rep):
        st = tasks.SwapStages(rep)
        st._enter("check")
        st.start("content check", 4, "sample")
        st.note("extract source: a.mp4")
        st.start("extract a.mp4", 10, "frame")
        st.advance(10)
        st.note("extract target: b.mp4")
        # training already done earlier: no train phase
        st.start("convert", 5, "frame")
        st.advance(5)
        st.start("eval", 5, "frame")
        st.close("done")
        return {"ok": True}

    jid = jm.start(tmp_path, "swap", fake_chain, "Swap")
    assert jm.wait(tmp_path, 10)
    s = jm.latest(tmp_path)
    assert s["id"] == jid
    got = {x["key"]: x["status"] for x in s["stages"]}
    assert got == {"check": "done", "extract-source": "done", "extract-target": "done", "train": "skipped",
                   "convert": "done", "verify": "done", "eval": "done"}
    h = stages_html(s)
    assert 'data-status="done"' in h and "data-stage='train' data-state='skipped'" in h and "↷" in h


def test_stop_marks_the_running_stage(tmp_path):
    jm = JobManager()

    def stopped(rep):
        st = tasks.SwapStages(rep)
        st.note("extract source: a.mp4")
        st.start("train", 100, "step")
        st.advance(3, loss_src=0.5)
        st.close("stopped")
        from facedub.errors import Cancelled

        raise Cancelled("stopped; press Continue")

    jm.start(tmp_path, "swap", stopped, "Swap")
    jm.wait(tmp_path, 10)
    s = jm.latest(tmp_path)
    assert s["status"] == "cancelled"
    assert {x["key"]: x["status"] for x in s["stages"]}["train"] == "stopped"
    assert "Stopped" in stages_html(s)


def test_swap_job_refuses_before_starting(tmp_path):
    p = create_project(tmp_path / "projects", "s")
    with pytest.raises(BadInput, match="source"):
        tasks.swap_job(p, 1.0)
    v = tmp_path / "v.mp4"
    v.write_bytes(b"x")
    p = set_inputs(p, "source", [str(v)])
    p = set_inputs(p, "target", [str(v)])
    with pytest.raises(BadInput, match="consent"):
        tasks.swap_job(p, 1.0)
    for role in ("source", "target"):
        tasks.record_consent(p, role, "aiface", "tests", "tests", "", None, True)
    with pytest.raises(BadInput, match="minutes"):
        tasks.swap_job(p, 0)
    assert callable(tasks.swap_job(p, 0.5))


def test_swap_button_without_consent_is_one_plain_line(tmp_path):
    from facedub.ui.app import build_app

    demo = build_app(tmp_path / "projects")
    on_swap = next(bf.fn for bf in demo.fns.values() if bf.fn.__name__ == "on_swap")
    # no project chosen: one is made; empty consent form: refused with one line, no job
    fields = [None, "", "", "", "", "", None, False] * 2
    out = on_swap(None, 5, *fields)
    msg = html.unescape(out[-1])
    assert 'class="fd-msg err"' in out[-1] and "subject" in msg and "\n" not in msg
    assert not list((tmp_path / "projects").glob("*/jobs/*.json"))


def test_quality_md():
    assert quality_md(None) == ""
    md = quality_md({"arch": "lite", "model_step": 12, "train_minutes": 0.2, "eval": {"source_share": 0.9},
                     "verdict": {"text": "recognisable, soft", "hints": ["train longer"]}})
    assert "step 12" in md and "recognisable, soft" in md and "90 %" in md and "train longer" in md


def test_a_stop_during_training_ends_the_chain_at_the_next_stage(tmp_path):
    """Training stops cleanly and returns; the chain must not go on to convert."""
    jm = JobManager()

    def chain(rep):
        st = tasks.SwapStages(rep)
        st.note("extract source: a.mp4")
        st.start("train", 100, "step")
        rep.request_stop()  # the user pressed Stop; train saves and returns
        try:
            st.start("convert", 5, "frame")
        except BaseException:
            st.close("stopped")
            raise
        return {"converted": True}

    jm.start(tmp_path, "swap", chain, "Swap")
    jm.wait(tmp_path, 10)
    s = jm.latest(tmp_path)
    assert s["status"] == "cancelled" and "Continue" in s["error"]
    got = {x["key"]: x["status"] for x in s["stages"]}
    assert got["train"] == "stopped" and got["convert"] == "waiting"


def test_train_tab_budgets_in_minutes(tmp_path, monkeypatch):
    from facedub.ui.app import build_app

    calls = []

    def fake_train_job(p, arch, steps, batch, resume, preview_every=None, minutes=None):
        calls.append({"steps": steps, "minutes": minutes, "batch": batch})
        return lambda rep: None

    monkeypatch.setattr(tasks, "train_job", fake_train_job)
    create_project(tmp_path / "projects", "t")
    jm = JobManager()
    demo = build_app(tmp_path / "projects", jm)
    on_train = next(bf.fn for bf in demo.fns.values() if bf.fn.__name__ == "on_train")
    assert "started" in on_train("t", "lite", 2.5, 2000, 8, 100, True)
    jm.wait(tmp_path / "projects" / "t", 10)
    assert "started" in on_train("t", "lite", 0, 300, 8, 100, True)
    jm.wait(tmp_path / "projects" / "t", 10)
    assert calls == [{"steps": None, "minutes": 2.5, "batch": 8}, {"steps": 300, "minutes": None, "batch": 8}]
