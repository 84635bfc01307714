"""`facedub swap`: the whole chain on short pieces of the shared synthetic identities."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from facedub.cli import main
from facedub.safety.consent import create_consent, save_consent


def _clip(src: Path, dest: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src`` (video only), re-encoded small."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 256, 256, "yuv420p"
        for i, f in enumerate(inp.decode(video=0)):
            if i == frames:
                break
            img = f.to_ndarray(format="rgb24")
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(256, 256)):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return dest


def _consent(path: Path, who: str) -> str:
    save_consent(create_consent(who, "facedub tests", "automated tests", synthetic=True), path)
    return str(path)


@pytest.fixture(scope="module")
def pair(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("swap")
    return {
        "dir": d,
        "source": _clip(shared_data / "synthetic/aiface2/intro_512.mp4", d / "src.mp4", 48),
        "target": _clip(shared_data / "synthetic/aiface1/speech_512.mp4", d / "tgt.mp4", 24),
        "source_consent": Path(_consent(d / "src-consent.json", "aiface2")),
        "target_consent": Path(_consent(d / "tgt-consent.json", "aiface1")),
    }


@pytest.mark.shared
@pytest.mark.slow
def test_swap_runs_the_chain_and_resumes(pair: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = pair["dir"] / "out.mp4"
    argv = [
        "--quiet", "swap", "--source", str(pair["source"]), "--target", str(pair["target"]), "--out", str(out),
        "--source-consent", str(pair["source_consent"]), "--target-consent", str(pair["target_consent"]),
        "--arch", "lite", "--steps", "6", "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(out) and out.is_file()
    assert summary["model_step"] == 6 and summary["arch"] == "lite"
    assert summary["faces_source"] >= 40 and summary["faces_target"] >= 20
    assert summary["convert"]["frames"] == 24
    assert summary["verify"]["marked"] is True and summary["verify"]["watermark"]["found"] is True
    assert summary["eval"]["frames_compared"] == 24
    assert Path(summary["eval_report"]).is_file()
    project = pair["dir"] / "out.facedub"
    assert (project / "model" / "model.json").is_file() and (project / "consent" / "source.json").is_file()

    # A second run with the same budget does no training and no conversion again.
    mtime = out.stat().st_mtime_ns
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert set(again["skipped"]) == {"train", "convert"} and again["model_step"] == 6
    assert out.stat().st_mtime_ns == mtime

    # Another convert setting converts again with the same model.
    assert main([*argv[:-1], "--forehead", "0", "--json"]) == 0
    refit = json.loads(capsys.readouterr().out)
    assert "train" in refit["skipped"] and "convert" not in refit["skipped"]
    assert json.loads((project / "swap.json").read_text())["convert_settings"]["convert"]["forehead"] == 0.0

    # A bigger budget continues the same model.
    assert main([*argv[:-3], "--steps", "9", "--json"]) == 0
    more = json.loads(capsys.readouterr().out)
    assert more["model_step"] == 9 and "train" not in more["skipped"] and "convert" not in more["skipped"]


@pytest.mark.shared
def test_swap_without_consent_is_refused(pair: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = pair["dir"] / "nocons.mp4"
    code = main(["--quiet", "swap", "--source", str(pair["source"]), "--target", str(pair["target"]), "--out", str(out), "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "consent" in err and "Traceback" not in err
    assert not out.exists()


def test_swap_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["swap", "--source", str(tmp_path / "missing.mp4"), "--target", str(tmp_path / "t.mp4"), "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "missing.mp4" in err and len(err.strip().splitlines()) == 1
    vid = tmp_path / "v.mp4"
    vid.write_bytes(b"x")
    code = main(["swap", "--source", str(vid), "--target", str(vid), "--out", str(vid)])
    assert code == 2 and "overwrite" in capsys.readouterr().err
    code = main(["swap", "--source", str(vid), "--target", str(tmp_path / "t.mp4"), "--out", str(tmp_path / "o.mp4"), "--forehead", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "forehead" in err and len(err.strip().splitlines()) == 1
    assert np.frombuffer(vid.read_bytes(), np.uint8).tolist() == [ord("x")]


@pytest.mark.shared
@pytest.mark.slow
def test_swap_runs_the_content_gate_once_per_file(pair: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before work, extract and convert all pass each input through the gate; the
    scan itself runs once per file per run (later stages reuse the verdict of the identical file)."""
    from facedub.safety import content_gate

    scanned: list[str] = []
    real = content_gate.scan_file
    monkeypatch.setattr(content_gate, "scan_file", lambda p, *a, **k: scanned.append(Path(p).name) or real(p, *a, **k))
    out = pair["dir"] / "once.mp4"
    argv = [
        "--quiet", "swap", "--source", str(pair["source"]), "--target", str(pair["target"]), "--out", str(out),
        "--source-consent", str(pair["source_consent"]), "--target-consent", str(pair["target_consent"]),
        "--arch", "lite", "--steps", "1", "--max-frames", "24", "--no-eval", "--json",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.is_file()
    assert sorted(scanned) == ["src.mp4", "tgt.mp4"]


@pytest.mark.shared
@pytest.mark.slow
def test_swap_occlusion_reaches_training(pair: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`swap --occlusion auto` keeps occluders in front at convert time and leaves them out of
    the training loss too (the same mask in both, as the issue asks); off stays off. --device
    and --precision reach training as well as convert."""
    import facedub.train as train_pkg

    seen: list[tuple[str, str | None, str]] = []
    real = train_pkg.train
    monkeypatch.setattr(train_pkg, "train", lambda cfg, *a, **k: seen.append((cfg.occlusion, cfg.device, cfg.precision)) or real(cfg, *a, **k))
    for mode, extra in (("auto", ["--device", "cpu", "--precision", "fp32"]), ("off", [])):
        out = pair["dir"] / f"occl-{mode}.mp4"
        argv = [
            "--quiet", "swap", "--source", str(pair["source"]), "--target", str(pair["target"]), "--out", str(out),
            "--source-consent", str(pair["source_consent"]), "--target-consent", str(pair["target_consent"]),
            "--arch", "lite", "--steps", "1", "--max-frames", "24", "--no-eval", "--occlusion", mode, *extra,
        ]
        assert main(argv) == 0, capsys.readouterr().err
        assert out.is_file()
    assert seen == [("auto", "cpu", "fp32"), ("off", None, "auto")]
