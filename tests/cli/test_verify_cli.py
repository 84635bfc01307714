import io
import json
import os

import numpy as np
import pytest

from facedub.cli import main


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACEDUB_HOME", str(tmp_path_factory.getbasetemp() / "facedub_home"))


def _frames(n=12, size=256):
    import cv2

    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((size + 32, size + 32, 3)).astype(np.float32), (0, 0), 5)
    big = (big - big.min()) / (big.max() - big.min())
    return [(big[i : i + size, i : i + size] * 200 + 30).astype(np.uint8) for i in range(n)]


def _mp4(path, frames):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": "18"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def _marked(tmp_path):
    from facedub.safety import policy, provenance

    ctx = policy.OutputContext(provenance.output_info([], {"id": "m"}))
    out = tmp_path / "out.mp4"
    _mp4(out, [policy.mark_frame(f, ctx) for f in _frames()])
    policy.finalize_output(out, ctx)
    return ctx, out


def test_marked_file_exits_0_with_json(tmp_path, capsys):
    ctx, out = _marked(tmp_path)
    assert main(["verify", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["marked"] and d["output_id"] == ctx.output_id
    assert d["watermark"]["found"] and d["tags"]["found"] and d["manifest"]["found"] and d["c2pa"]["found"]
    assert main(["verify", str(out)]) == 0
    text = capsys.readouterr().out
    assert "watermark: found" in text and "C2PA:" in text


def test_unmarked_file_exits_1(tmp_path, capsys):
    p = tmp_path / "plain.mp4"
    _mp4(p, _frames())
    assert main(["verify", str(p)]) == 1
    assert "no facedub mark" in capsys.readouterr().out


def test_stripped_copy_still_exits_0(tmp_path):
    import av

    ctx, out = _marked(tmp_path)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    stripped = tmp_path / "stripped.mp4"
    _mp4(stripped, frames)
    assert main(["verify", str(stripped)]) == 0


def test_bad_input_exits_2(tmp_path):
    assert main(["verify", str(tmp_path / "missing.mp4")]) == 2
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["verify", str(bad)]) == 2


def test_max_frames_is_the_count_and_frames_an_old_spelling(tmp_path, capsys):
    """verify's count of frames examined is --max-frames (as in extract and eval); --frames, the
    old name (convert's --frames is a range), still works with a note."""
    ctx, out = _marked(tmp_path)
    assert main(["verify", str(out), "--max-frames", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["watermark"]["frames"] == 3
    assert main(["verify", str(out), "--frames", "2", "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["watermark"]["frames"] == 2 and "use --max-frames" in cap.err
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    helptext = capsys.readouterr().out
    assert "--max-frames" in helptext and "--frames" not in helptext
