"""Background jobs: state on disk, one job per project, stop, errors as plain messages."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from facedub.errors import BadInput, Cancelled, ConsentMissing, ContentRefused
from facedub.ui.jobs import JobBusy, JobManager, list_jobs


def _state(root, job_id):
    return json.loads((root / "jobs" / f"{job_id}.json").read_text())


def test_progress_persisted_and_result(tmp_path):
    jm = JobManager()

    def work(rep):
        rep.start("steps", total=10, unit="step")
        for i in range(10):
            rep.advance(1, loss=1.0 / (i + 1))
        rep.note("all good")
        rep.image(str(tmp_path / "grid.png"), "preview")
        rep.image(str(tmp_path / "grid2.png"), "preview")
        return {"steps": 10}

    jid = jm.start(tmp_path, "train", work, "Training")
    assert jm.wait(tmp_path, 10)
    s = _state(tmp_path, jid)
    assert s["status"] == "done" and s["done"] == 10 and s["total"] == 10
    assert s["result"] == {"steps": 10}
    assert s["notes"] == ["all good"]
    assert [i["path"] for i in s["images"]] == [str(tmp_path / "grid2.png")]  # newest per caption
    assert s["metrics"]["loss"] == pytest.approx(0.1)
    assert len(s["history"]) == 10 and s["history"][0]["loss"] == 1.0
    assert jm.latest(tmp_path)["id"] == jid
    assert JobManager().latest(tmp_path)["status"] == "done"  # another process/manager sees it


def test_one_job_per_project_and_stop(tmp_path):
    jm = JobManager()
    started = threading.Event()

    def slow(rep):
        rep.start("loop", total=None)
        started.set()
        while True:
            if rep.should_stop():
                raise Cancelled("stopped by the user")
            rep.advance(1)
            time.sleep(0.01)

    jid = jm.start(tmp_path / "a", "train", slow)
    started.wait(5)
    with pytest.raises(JobBusy):
        jm.start(tmp_path / "a", "extract", lambda rep: None)
    other = jm.start(tmp_path / "b", "extract", lambda rep: {"ok": True})  # another project is fine
    live = jm.latest(tmp_path / "a")
    assert live["status"] == "running" and live["id"] == jid
    assert jm.stop(tmp_path / "a")
    assert jm.wait(tmp_path / "a", 10)
    assert _state(tmp_path / "a", jid)["status"] == "cancelled"
    assert jm.wait(tmp_path / "b", 10) and _state(tmp_path / "b", other)["status"] == "done"
    jm.start(tmp_path / "a", "extract", lambda rep: None)  # free again
    assert jm.wait(tmp_path / "a", 10)
    assert not jm.stop(tmp_path / "a")


def test_stop_file_from_another_process(tmp_path):
    jm = JobManager()
    started = threading.Event()

    def slow(rep):
        started.set()
        for _ in range(1000):
            if rep.should_stop():
                raise Cancelled()
            time.sleep(0.01)

    jid = jm.start(tmp_path, "train", slow)
    started.wait(5)
    (tmp_path / "jobs" / f"{jid}.stop").touch()
    assert jm.wait(tmp_path, 10)
    assert _state(tmp_path, jid)["status"] == "cancelled"
    assert not (tmp_path / "jobs" / f"{jid}.stop").exists()


@pytest.mark.parametrize(
    "exc, status, text",
    [
        (ContentRefused("v.mp4: refused at 00:03"), "refused", "v.mp4: refused at 00:03"),
        (ConsentMissing("source faceset has no consent"), "refused", "source faceset has no consent"),
        (BadInput("x.mp4: not a video"), "failed", "x.mp4: not a video"),
        (ZeroDivisionError("division by zero"), "failed", "internal error: ZeroDivisionError: division by zero"),
    ],
)
def test_errors_become_messages(tmp_path, exc, status, text):
    jm = JobManager()

    def bad(rep):
        rep.start("x", 1)
        raise exc

    jid = jm.start(tmp_path, "extract", bad)
    jm.wait(tmp_path, 10)
    s = _state(tmp_path, jid)
    assert s["status"] == status and s["error"] == text
    assert "Traceback" not in json.dumps(s)
    log = tmp_path / "jobs" / f"{jid}.log"
    assert log.exists() == (status == "failed" and not isinstance(exc, BadInput))


def test_stale_running_job_is_interrupted(tmp_path):
    (tmp_path / "jobs").mkdir()
    # a job recorded as running by a process that no longer exists
    dead = {"id": "20000101-000000-000-train", "kind": "train", "status": "running", "pid": 2**22 + 12345}
    (tmp_path / "jobs" / f"{dead['id']}.json").write_text(json.dumps(dead))
    jm = JobManager()
    assert jm.latest(tmp_path)["status"] == "interrupted"
    jm.start(tmp_path, "train", lambda rep: None)  # not blocked by the dead one
    assert jm.wait(tmp_path, 10)
    assert len(list_jobs(tmp_path / "jobs")) == 2


_HOLD = """
import sys, time
from facedub.project_lock import ProjectLock
lock = ProjectLock(sys.argv[1], "20000101-000001-000-train", "Training elsewhere").acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_two_processes_cannot_both_hold_the_lock(tmp_path):
    import subprocess
    import sys

    from facedub.project_lock import ProjectBusy, ProjectLock, holder

    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert holder(tmp_path)["pid"] == proc.pid
        with pytest.raises(ProjectBusy, match=f"another process \\(pid {proc.pid}\\).*Training elsewhere"):
            ProjectLock(tmp_path, "x").acquire()
        jm = JobManager()
        with pytest.raises(JobBusy, match="another process"):
            jm.start(tmp_path, "train", lambda rep: None)
        assert jm.stop(tmp_path)  # a stop request for the other process's job
        assert (tmp_path / "jobs" / "20000101-000001-000-train.stop").is_file()
    finally:
        proc.kill()
        proc.wait()
    # the holder died without releasing: the kernel dropped the lock, nothing is stale
    assert holder(tmp_path) is None
    with ProjectLock(tmp_path, "mine") as lock:
        assert lock.held and holder(tmp_path)["job"] == "mine"
        with pytest.raises(ProjectBusy):  # a second holder in the same process is refused too
            ProjectLock(tmp_path, "again").acquire()
    assert holder(tmp_path) is None


def test_cli_swap_takes_the_same_lock(tmp_path):
    from facedub.project_lock import ProjectBusy
    from facedub.swap import project_lock_for_swap

    jm = JobManager()
    started = threading.Event()
    release = threading.Event()

    def hold(rep):
        started.set()
        release.wait(10)

    jm.start(tmp_path, "swap", hold, "Swap")
    started.wait(5)
    try:
        with pytest.raises(ProjectBusy, match="Swap"):
            project_lock_for_swap(tmp_path).acquire()
    finally:
        release.set()
        jm.wait(tmp_path, 10)
    with project_lock_for_swap(tmp_path):
        with pytest.raises(JobBusy):
            jm.start(tmp_path, "train", lambda rep: None)


def test_poll_reads_only_the_newest_record_and_old_ones_are_pruned(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for i in range(60):
        kind = "extract" if i == 0 else "train"
        jid = f"20000101-0000{i // 60:02d}-{i:03d}-{kind}"
        (jobs / f"{jid}.json").write_text(json.dumps({"id": jid, "kind": kind, "status": "done"}))
        (jobs / f"{jid}.log").write_text("Traceback ...")
    jm = JobManager(keep_jobs=10)
    for _ in range(5):
        assert jm.latest(tmp_path)["id"] == "20000101-000000-059-train"
        assert jm.latest(tmp_path, "extract")["id"] == "20000101-000000-000-extract"
    assert jm.reads == 2  # two files parsed once each, however often the page polls
    jid = jm.start(tmp_path, "convert", lambda rep: None)
    assert jm.wait(tmp_path, 10)
    left = sorted(p.stem for p in jobs.glob("*.json"))
    assert len(left) == 12 and jid in left  # 10 newest + the newest extract kept, + the new job
    assert "20000101-000000-000-extract" in left and "20000101-000000-001-train" not in left
    assert not (jobs / "20000101-000000-001-train.log").exists()
    assert jm.latest(tmp_path)["id"] == jid


def test_facedub_swap_refuses_a_project_the_web_app_is_working_in(tmp_path, capsys):
    """The CLI's 'facedub swap' takes the project's lock after its checks: a job of the web app
    in the same project makes it stop with one line, before any extraction."""
    from facedub.cli import main
    from facedub.safety.consent import create_consent, save_consent
    from tests.conftest import write_test_video

    src = write_test_video(tmp_path / "src.mp4", frames=4)
    tgt = write_test_video(tmp_path / "tgt.mp4", frames=4)
    consents = []
    for who in ("a", "b"):
        c = tmp_path / f"{who}.json"
        save_consent(create_consent(who, "tests", "tests", synthetic=True), c)
        consents.append(str(c))
    project = tmp_path / "out.facedub"
    jm = JobManager()
    release = threading.Event()
    started = threading.Event()

    def hold(rep):
        started.set()
        release.wait(60)

    from facedub.project import create_project

    create_project(tmp_path, "out.facedub")
    jm.start(project, "train", hold, "Training from the page")
    started.wait(5)
    try:
        code = main(["--quiet", "swap", "--source", str(src), "--target", str(tgt), "--out", str(tmp_path / "out.mp4"),
                     "--source-consent", consents[0], "--target-consent", consents[1], "--steps", "1"])
        err = capsys.readouterr().err
    finally:
        release.set()
        jm.wait(project, 10)
    assert code == 2 and "a job is already running" in err and "Training from the page" in err and "Traceback" not in err
    assert not (project / "facesets" / "source" / "faceset.json").exists() and not (project / "consent" / "source.json").exists()
