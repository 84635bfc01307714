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
    # a live foreign process blocks
    alive = dict(dead, id="20000101-000001-000-train", pid=os.getppid())
    (tmp_path / "jobs" / f"{alive['id']}.json").write_text(json.dumps(alive))
    with pytest.raises(JobBusy, match="another process"):
        jm.start(tmp_path, "train", lambda rep: None)
    assert len(list_jobs(tmp_path / "jobs")) == 3
