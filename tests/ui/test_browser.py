"""End to end in a real headless Chromium: a tiny project through consent → extract →
train → convert → result with its verification badge.

Runs the app in a subprocess on a free 127.0.0.1 port, drives Debian's /usr/bin/chromium
with Playwright (its Python package only: no browser download). Screenshots of every step
go to ``test-artifacts/ui/`` when the test fails (or always, with FACEDUB_UI_SCREENSHOTS=1). Also checks that the page never asks for
anything outside 127.0.0.1 and that project files are not served by path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.shared]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("FACEDUB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
FRAMES = 40
FINISHED = ("done", "failed", "refused", "cancelled", "interrupted")


def _need_browser() -> None:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not installed ({CHROMIUM}); install Debian's 'chromium' to run the browser test")
    pytest.importorskip("playwright.sync_api", reason="Python package 'playwright' not installed")
    pytest.importorskip("gradio", reason="Python package 'gradio' not installed")


def _short_clip(src: Path, dst: Path, frames: int = FRAMES) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded as a small H.264 MP4 (PyAV)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        n = 0
        for frame in inp.decode(vin):
            img = frame.to_ndarray(format="rgb24")
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
            n += 1
            if n >= frames:
                break
        for p in vs.encode(None):
            out.mux(p)
    return dst


@pytest.fixture(scope="module")
def clips(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    src = _short_clip(shared_data / "synthetic" / "aiface1" / "speech_256.mp4", d / "aiface1_short.mp4")
    tgt = _short_clip(shared_data / "synthetic" / "aiface2" / "intro_256.mp4", d / "aiface2_short.mp4")
    bad = d / "not_a_video.mp4"
    bad.write_text("this is a text file, not a video\n")
    return {"source": src, "target": tgt, "bad": bad}


def _start_server(root: Path, *extra: str, token: str | None = None):
    """The app in a subprocess on a free 127.0.0.1 port; waits until it answers."""
    from facedub.ui.server import free_port

    port = free_port()
    logpath = root.parent / f"{root.name}-server.log"
    log = open(logpath, "w")
    env = dict(os.environ, PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    env.pop("FACEDUB_UI_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "facedub.ui.server", "--projects", str(root), "--port", str(port), "--max-upload", "20mb",
         *(["--token", token] if token else []), *extra],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(root.parent),
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            req = urllib.request.Request(url, headers={"x-facedub-token": token} if token else {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            log.close()
            raise RuntimeError(f"UI server did not start: {logpath.read_text()[-3000:]}")
        time.sleep(0.5)
    return {"url": url, "root": root, "proc": proc, "log": logpath, "logfile": log, "token": token}


def _stop_server(srv) -> None:
    srv["proc"].terminate()
    try:
        srv["proc"].wait(10)
    except subprocess.TimeoutExpired:
        srv["proc"].kill()
    srv["logfile"].close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    srv = _start_server(tmp_path_factory.mktemp("projects"))
    yield srv
    _stop_server(srv)


@pytest.fixture
def browser_page(server, request):
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    shots: list[tuple[str, bytes]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)

        def on_request(r):
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
                outside.append(r.url)

        page.on("request", on_request)

        def snap(name: str) -> None:
            try:
                shots.append((name, page.screenshot(full_page=True)))
            except Exception:
                pass

        page.snap = snap  # type: ignore[attr-defined]
        yield page, outside
        failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
        if failed or os.environ.get("FACEDUB_UI_SCREENSHOTS"):  # set it to keep them after a pass too
            snap("at-failure" if failed else "at-end")
            shutil.rmtree(ARTIFACTS, ignore_errors=True)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for i, (name, png) in enumerate(shots):
                (ARTIFACTS / f"{i:02d}-{name}.png").write_bytes(png)
            for srv in (server, *getattr(request.node, "extra_servers", ())):
                shutil.copy(srv["log"], ARTIFACTS / srv["log"].name)
        context.close()
        browser.close()


# --- helpers ------------------------------------------------------------------------------
def _job_id(page) -> str:
    return page.eval_on_selector("#job-status", "e => e.dataset.id || ''") if page.query_selector("#job-status") else ""


def _wait_job(page, kind: str, before: str, timeout_s: float) -> dict:
    """Wait until a job of ``kind`` newer than ``before`` has finished; returns its status/text."""
    page.wait_for_function(
        """([kind, before, fin]) => { const e = document.querySelector('#job-status');
             return e && e.dataset.kind === kind && e.dataset.id !== before && fin.includes(e.dataset.status); }""",
        arg=[kind, before, list(FINISHED)],
        timeout=timeout_s * 1000,
    )
    status = page.eval_on_selector("#job-status", "e => e.dataset.status")
    return {"status": status, "text": page.inner_text("#job-status")}


def _click_and_wait(page, button: str, kind: str, timeout_s: float) -> dict:
    before = _job_id(page)
    page.click(button)
    return _wait_job(page, kind, before, timeout_s)


def _fill(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id}").locator("input, textarea").first.fill(text)


def _tab(page, label: str) -> None:
    page.get_by_role("tab", name=label).click()


def test_full_flow_in_chromium(server, clips, browser_page):
    page, outside = browser_page
    t0 = time.time()
    page.goto(server["url"], wait_until="load")
    page.wait_for_selector("#create-btn")
    page.snap("loaded")

    # project
    _fill(page, "new-name", "tiny")
    page.click("#create-btn")
    page.wait_for_function("() => document.querySelector('#project-info').innerText.includes('tiny')")
    assert (server["root"] / "tiny" / "project.json").is_file()
    (server["root"] / "tiny" / "consent" / "secret.txt").write_text("private")
    # project files are not reachable by path
    for path in ("tiny/consent/secret.txt", "tiny/project.json", "../server.log", ".ui-cache/../tiny/project.json"):
        target = (server["root"] / path).resolve()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server['url']}gradio_api/file={target}", timeout=5)
        assert e.value.code == 403
    # uploads over the limit (20mb for this server) are refused
    import httpx

    r = httpx.post(f"{server['url']}gradio_api/upload", files={"files": ("big.bin", b"0" * (21 << 20))}, timeout=30)
    assert r.status_code == 413

    # consent (the wizard's first tab; the one-click Swap tab comes first): an empty form is a
    # plain message, then synthetic records for both identities
    _tab(page, "1 · Consent")
    page.click("#source-consent-save")
    page.wait_for_selector("#fd-msg-err")
    assert "subject" in page.inner_text("#message")
    for role, who in (("source", "aiface1"), ("target", "aiface2")):
        _fill(page, f"{role}-subject", who)
        _fill(page, f"{role}-granted-by", "facedub tests")
        _fill(page, f"{role}-scope", "automated browser test")
        page.locator(f"#{role}-synthetic input[type=checkbox]").check()
        page.click(f"#{role}-consent-save")
        page.wait_for_function(f"() => document.querySelector('#{role}-consent-status').innerText.includes('Recorded')")
    assert (server["root"] / "tiny" / "consent" / "source.json").is_file()
    page.snap("consent")

    # faces: source by upload, target first a bad file (plain message), then by local path
    _tab(page, "2 · Faces")
    page.set_input_files("#source-upload input[type=file]", str(clips["source"]))
    page.wait_for_function("() => document.querySelector('#source-upload').innerText.includes('aiface1_short')")
    page.click("#source-use")
    page.wait_for_function("() => document.querySelector('#source-inputs').innerText.includes('aiface1_short.mp4')")
    assert (server["root"] / "tiny" / "inputs" / "source" / "aiface1_short.mp4").is_file()

    _fill(page, "target-path", str(clips["bad"]))
    page.click("#target-use")
    page.wait_for_function("() => document.querySelector('#target-inputs').innerText.includes('not_a_video')")
    bad = _click_and_wait(page, "#target-extract", "extract", 60)
    assert bad["status"] == "failed", bad
    assert "not_a_video.mp4" in bad["text"] and "Traceback" not in page.content()

    _fill(page, "target-path", str(clips["target"]))
    page.click("#target-use")
    page.wait_for_function("() => document.querySelector('#target-inputs').innerText.includes('aiface2_short')")
    for role in ("source", "target"):
        res = _click_and_wait(page, f"#{role}-extract", "extract", 120)
        assert res["status"] == "done", res
        page.wait_for_function(f"() => document.querySelectorAll('#{role}-gallery img').length > 0")
    page.snap("extracted")
    import json

    # remove one bad face from each gallery
    for role in ("source", "target"):
        n_before = page.locator(f"#{role}-gallery img").count()
        page.locator(f"#{role}-gallery img").first.click()
        page.wait_for_function(f"() => document.querySelector('#{role}-selected').innerText.includes('Selected 1')")
        page.click(f"#{role}-remove")
        page.wait_for_function(f"() => document.querySelector('#message').innerText.includes('Removed 1 {role}')")
        fs = json.loads((server["root"] / "tiny" / "facesets" / role / "faceset.json").read_text())
        assert len(fs["removed"]) == 1 and len(fs["faces"]) == n_before - 1
        assert not (server["root"] / "tiny" / "facesets" / role / fs["removed"][0]).exists()

    # train: live preview while it runs, stop (the model is saved), then resume a few steps
    _tab(page, "3 · Train")
    _fill(page, "train-steps", "500")
    _fill(page, "train-batch", "4")
    _fill(page, "train-preview-every", "4")
    before = _job_id(page)
    page.click("#train-btn")
    page.wait_for_function(
        "(b) => { const e = document.querySelector('#job-status'); return e && e.dataset.kind === 'train' && e.dataset.id !== b && e.dataset.status === 'running'; }",
        arg=before,
    )
    page.wait_for_selector("#train-preview img", timeout=120_000)  # the first preview grid, live
    page.wait_for_function("() => document.querySelector('#train-stats').innerText.includes('Examples/s')")
    assert "ETA" in page.inner_text("#train-stats")
    page.snap("training")
    page.click("#stop-btn")
    res = _wait_job(page, "train", before, 120)
    assert res["status"] == "cancelled", res
    assert "model is saved" in res["text"]
    meta = json.loads((server["root"] / "tiny" / "model" / "model.json").read_text())
    stopped_at = meta["step"]
    assert 4 <= stopped_at < 500
    _fill(page, "train-steps", "3")
    res = _click_and_wait(page, "#train-btn", "train", 120)
    assert res["status"] == "done", res
    assert json.loads((server["root"] / "tiny" / "model" / "model.json").read_text())["step"] == stopped_at + 3
    assert f"Step {stopped_at + 3}" in page.inner_text("#train-stats")
    page.wait_for_selector("#train-loss img", timeout=15_000)
    page.snap("trained")

    # convert: a preview frame, then the whole clip
    _tab(page, "4 · Convert")
    res = _click_and_wait(page, "#preview-btn", "preview", 60)
    assert res["status"] == "done", res
    page.wait_for_selector("#conv-preview img", timeout=15_000)
    res = _click_and_wait(page, "#render-btn", "convert", 150)
    assert res["status"] == "done", res
    page.snap("converted")

    # reload: the finished job and the result are still there
    page.reload(wait_until="load")
    page.wait_for_function("() => { const e = document.querySelector('#job-status'); return e && e.dataset.kind === 'convert' && e.dataset.status === 'done'; }")

    # result: the video plays from the app's cache, and the verification badge
    _tab(page, "5 · Result")
    page.wait_for_selector("#result-video video", timeout=20_000)
    src = page.eval_on_selector("#result-video video", "v => v.currentSrc || v.src")
    assert src.startswith(server["url"]) and "result" in src
    page.wait_for_selector("#verify-badge[data-watermark]:not([data-watermark=unknown])", timeout=20_000)
    page.snap("result")
    assert page.get_attribute("#verify-badge", "data-watermark") == "found", page.inner_text("#verify-badge")
    assert "Watermark found" in page.inner_text("#verify-badge")

    # nothing was asked of any host but 127.0.0.1
    assert outside == []
    assert time.time() - t0 < 300


# --- the one-click Swap page ----------------------------------------------------------------
TOKEN = "browser-test-token-42"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """A second server that requires an access token (as a shared one does)."""
    _need_browser()
    srv = _start_server(tmp_path_factory.mktemp("swap-projects"), token=TOKEN)
    yield srv
    _stop_server(srv)


def _stage(page, key: str) -> str:
    return page.eval_on_selector(f"#swap-stages li[data-stage='{key}']", "e => e.dataset.state") if page.query_selector(f"#swap-stages li[data-stage='{key}']") else ""


def test_one_click_swap_in_chromium(token_server, server, clips, browser_page, request, tmp_path):
    """The Swap tab: both videos uploaded, both consents (one with an evidence file), a 1-minute
    budget, one click; Stop during training, Continue, then the before/after, the quality
    report and the verify badge — behind the access token."""
    page, outside = browser_page
    request.node.extra_servers = (token_server,)
    srv = token_server
    t0 = time.time()
    # without the token: refused; with it in the address: a cookie, and the address is clean
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(srv["url"], timeout=5)
    assert e.value.code == 401
    page.goto(srv["url"] + f"?token={TOKEN}", wait_until="load")
    assert "token" not in page.url
    page.wait_for_selector("#swap-btn")
    assert page.get_by_role("tab", selected=True).inner_text().strip() == "Swap"
    page.snap("swap-loaded")

    evidence = tmp_path / "release.txt"
    evidence.write_text("aiface1 is AI-generated; released for facedub's tests.\n")
    page.set_input_files("#swap-source-upload input[type=file]", str(clips["source"]))
    page.set_input_files("#swap-target-upload input[type=file]", str(clips["target"]))
    page.set_input_files("#swap-source-evidence input[type=file]", str(evidence))
    for sel, name in (("#swap-source-upload", "aiface1_short"), ("#swap-target-upload", "aiface2_short"), ("#swap-source-evidence", "release")):
        page.wait_for_function(f"() => document.querySelector('{sel}').innerText.includes('{name}')", timeout=60_000)
    for role, who in (("source", "aiface1"), ("target", "aiface2")):
        _fill(page, f"swap-{role}-subject", who)
        _fill(page, f"swap-{role}-scope", "automated browser test")
        page.locator(f"#swap-{role}-synthetic input[type=checkbox]").check()
    assert "10 min" in page.inner_text("#swap-budgets") and "3,058" in page.inner_text("#swap-budgets")
    _fill(page, "swap-minutes", "1")
    page.click("#swap-btn")
    page.wait_for_function("() => document.querySelector('#message').innerText.includes('Swap started')", timeout=60_000)
    projects = [d for d in srv["root"].iterdir() if (d / "project.json").is_file()]
    assert len(projects) == 1
    proj = projects[0]

    # the stage list moves; Stop while training, the model is kept
    page.wait_for_function("() => { const e = document.querySelector(\"#swap-stages li[data-stage='train']\"); return e && e.dataset.state === 'running'; }",
                           timeout=300_000)
    page.wait_for_function("() => document.querySelector('#swap-train-stats').innerText.includes('Step')", timeout=120_000)
    assert _stage(page, "extract-source") == "done" and _stage(page, "extract-target") == "done"
    page.wait_for_selector("#swap-loss img", timeout=40_000)  # the loss curve, live
    page.snap("swap-training")
    page.click("#swap-stop")
    page.wait_for_selector("#swap-stages[data-status=cancelled]", timeout=120_000)
    assert _stage(page, "train") == "stopped" and _stage(page, "convert") == "waiting"
    assert "press Continue" in page.inner_text("#swap-error")
    assert (proj / "model" / "model.json").is_file()
    assert not (proj / "output" / "result.mp4").exists()
    page.snap("swap-stopped")

    # Continue: extraction already done, training spends what is left, then the rest
    page.click("#swap-continue")
    page.wait_for_selector("#swap-stages[data-status=done]", timeout=600_000)
    assert _stage(page, "convert") == "done" and _stage(page, "eval") == "done"
    page.wait_for_selector("#swap-verify-badge[data-watermark=found]", timeout=30_000)
    assert "Watermark found" in page.inner_text("#swap-verify-badge")
    page.wait_for_selector("#swap-compare img", timeout=30_000)
    page.wait_for_selector("#swap-result-video video", timeout=30_000)
    page.wait_for_selector("#swap-before-video video", timeout=30_000)  # the uploaded target beside the result
    assert "quality:" in page.inner_text("#swap-quality")
    page.snap("swap-done")
    assert (proj / "output" / "result.mp4").is_file()

    # the evidence was kept in the project and still matches after the server restarts
    kept = proj / "consent" / "source.evidence" / "release.txt"
    assert kept.read_bytes() == evidence.read_bytes()
    _stop_server(srv)
    restarted = _start_server(srv["root"], token=TOKEN)
    request.node.extra_servers = (restarted,)
    try:
        shown = subprocess.run([sys.executable, "-m", "facedub", "consent", "show", str(proj)], capture_output=True, text=True)
        assert "sha256 matches" in shown.stdout, shown.stdout + shown.stderr
        page.goto(restarted["url"] + f"?token={TOKEN}", wait_until="load")
        page.wait_for_selector("#swap-stages[data-status=done]", timeout=30_000)
    finally:
        _stop_server(restarted)
        srv.update(restarted)
    assert outside == []
    print(f"one-click swap in the browser: {time.time() - t0:.0f} s")
