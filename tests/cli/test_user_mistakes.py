"""User mistakes beyond output paths: numeric options out of range, damaged facesets and models
shown by the inspectors, cheap checks before expensive work, and eval --max-frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facedub.cli import main
from tests.cli.test_bad_paths import World, _clip, _snapshot, world  # noqa: F401  (the shared fixture)


def _one_line(capsys: pytest.CaptureFixture[str], rc: int, *words: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1 and lines[0].startswith("facedub: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def _argv(w: World, tmp: Path) -> dict[str, list[str]]:
    return {
        "extract": ["extract", str(w.image), "--out", str(tmp / "fs")],
        "faceset": ["faceset", "show", str(w.fs), "--sheet", str(tmp / "s.png")],
        "train": ["train", "--source", str(w.fs), "--target", str(w.fs2), "--out", str(tmp / "m"), "--steps", "1"],
        "convert": ["convert", str(w.video), "--model", str(w.model), "--out", str(tmp / "o.mp4")],
        "swap": ["swap", "--source", str(w.video2), "--target", str(w.video), "--out", str(tmp / "o.mp4"),
                 "--source-consent", str(w.consent), "--target-consent", str(w.consent)],
        "verify": ["verify", str(w.video)],
        "eval": ["eval", str(w.video), "--target", str(w.video2), "--source", str(w.fs)],
        "ui": ["ui", "--projects", str(tmp / "projects")],
    }


# (command, option, bad value, words in the message)
BAD_NUMBERS = [
    ("extract", "--every", "0", "at least 1"), ("extract", "--min-size", "-1", "at least 0"),
    ("extract", "--blur-threshold", "-5", "at least 0"), ("extract", "--match-distance", "0", "more than 0"),
    ("extract", "--match-distance", "nan", "finite"), ("extract", "--max-frames", "0", "at least 1"),
    ("faceset", "--max-faces", "0", "at least 1"),
    ("train", "--width", "0", "more than 0"), ("train", "--width", "-1", "more than 0"), ("train", "--width", "inf", "finite"),
    ("train", "--batch-size", "0", "at least 1"), ("train", "--lr", "0", "more than 0"), ("train", "--lr", "-0.1", "more than 0"),
    ("train", "--seed", "-1", "at least 0"), ("train", "--preview-every", "-1", "at least 0"), ("train", "--save-every", "0", "at least 1"),
    ("train", "--size", "8", "at least 16"), ("train", "--size", "40", "multiple of 16"), ("train", "--coverage", "1.5", "at most 1"),
    ("train", "--coverage", "0.1", "at least 0.3"), ("train", "--threads", "0", "at least 1"), ("train", "--color-match", "2", "at most 1"),
    ("convert", "--frames", "0", "at least 1"), ("convert", "--preview", "-1", "at least 0"), ("convert", "--erode", "-2", "at least 0"),
    ("convert", "--feather", "-2", "at least 0"), ("convert", "--forehead", "-0.1", "at least 0"), ("convert", "--sharpen", "9", "at most 3"),
    ("convert", "--batch", "0", "at least 1"), ("convert", "--workers", "0", "at least 1"), ("convert", "--threads", "0", "at least 1"),
    ("convert", "--crf", "60", "at most 51"),
    ("swap", "--minutes", "0", "more than 0"), ("swap", "--steps", "0", "at least 1"), ("swap", "--every", "0", "at least 1"),
    ("swap", "--max-frames", "0", "at least 1"), ("swap", "--sharpen", "-1", "at least 0"),
    ("verify", "--max-frames", "0", "at least 1"),
    ("eval", "--every", "0", "at least 1"), ("eval", "--max-frames", "0", "at least 1"),
    ("ui", "--port", "0", "at least 1"), ("ui", "--port", "70000", "at most 65535"),
]


@pytest.mark.parametrize("command, option, value, words", BAD_NUMBERS)
def test_numeric_options_out_of_range(world: World, tmp_path: Path, capsys, command, option, value, words) -> None:  # noqa: F811
    argv = _argv(world, tmp_path)[command]
    if command == "train" and option == "--steps":
        argv = [a for a in argv if a not in ("--steps", "1")]
    before = _snapshot(world.root, tmp_path)
    rc = main(["--quiet", *argv, option, value])
    _one_line(capsys, rc, f"{option} {value}", words)
    assert _snapshot(world.root, tmp_path) == before  # checked before any work: nothing written


def test_faceset_show_reports_missing_and_unreadable_crops(tmp_path: Path, capsys) -> None:
    from tests.cli.test_bad_paths import ROOT, _load

    ff = _load("fakefaces_badpaths", ROOT / "train" / "fakefaces.py")
    fs = ff.make_faceset(tmp_path / "fs", "alice", n=6, seed=0)
    crops = sorted((fs / "faces").iterdir())
    crops[0].unlink()
    crops[1].write_text("not an image")
    rc = main(["faceset", "show", str(fs)])
    line = _one_line(capsys, rc, str(fs), "2 of 6", "missing", "not a readable image")
    assert crops[0].name in line
    assert not (fs / "contact_sheet.png").exists()


def test_model_show_reports_missing_and_damaged_weights(world: World, tmp_path: Path, capsys) -> None:  # noqa: F811
    import shutil

    m = tmp_path / "m"
    shutil.copytree(world.model, m)
    assert main(["model", "show", str(m)]) == 0
    capsys.readouterr()
    w = m / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 1
    w.write_bytes(bytes(data))
    _one_line(capsys, main(["model", "show", str(m)]), str(w), "corrupted")
    w.unlink()
    _one_line(capsys, main(["model", "show", str(m)]), str(w), "missing")


def test_swap_checks_every_input_before_any_work(world: World, tmp_path: Path, capsys) -> None:  # noqa: F811
    """An audio-only target, or a forged consent record: refused before the source is
    extracted, and before the project folder exists."""
    import av

    audio = tmp_path / "voice.m4a"
    with av.open(str(audio), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        s.layout = "mono"
        for _ in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate = 44100
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "o.mp4"
    base = ["swap", "--source", str(world.video2), "--out", str(out), "--steps", "1"]
    rc = main(["--quiet", *base, "--target", str(audio), "--source-consent", str(world.consent), "--target-consent", str(world.consent)])
    _one_line(capsys, rc, str(audio), "no video stream")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.m4a"]  # no project skeleton

    forged = json.loads(world.consent.read_text())
    forged["subject"] = "someone else"
    from facedub.safety.consent import ConsentRecord, content_id

    forged["id"] = content_id(ConsentRecord.from_dict(forged).content())
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    rc = main(["--quiet", *base, "--target", str(world.video), "--source-consent", str(tmp_path / "forged.json"),
               "--target-consent", str(world.consent)])
    _one_line(capsys, rc, "forged.json", "signature does not match")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forged.json", "voice.m4a"]


def test_eval_max_frames_applies_before_the_frame_count_check(world: World, tmp_path: Path, capsys) -> None:  # noqa: F811
    """A 'convert --frames 4' result (4 frames) against a 12-frame target: refused without
    --max-frames, compared on 4 frames with --max-frames 4."""
    short = _clip(tmp_path / "short.mp4", 4)
    long = _clip(tmp_path / "long.mp4", 12)
    rc = main(["--quiet", "eval", str(short), "--target", str(long), "--source", str(world.fs)])
    _one_line(capsys, rc, "short.mp4", "4 frames")
    assert main(["--quiet", "eval", str(short), "--target", str(long), "--source", str(world.fs), "--max-frames", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["frames_compared"] == 4


def test_project_and_projects_folders_of_another_kind(world: World, tmp_path: Path, capsys) -> None:  # noqa: F811
    before = _snapshot(world.root)
    rc = main(["--quiet", *_argv(world, tmp_path)["swap"], "--project", str(world.fs)])
    _one_line(capsys, rc, str(world.fs), "is a faceset folder")
    rc = main(["--quiet", *_argv(world, tmp_path)["swap"], "--project", str(world.model / "p")])
    _one_line(capsys, rc, str(world.model / "p"), "inside the model folder")
    rc = main(["ui", "--projects", str(world.fs2)])
    _one_line(capsys, rc, str(world.fs2), "is a faceset folder")
    rc = main(["ui", "--projects", str(world.model / "projects")])
    _one_line(capsys, rc, str(world.model / "projects"), "inside the model folder")
    assert _snapshot(world.root) == before


def test_every_numeric_option_has_a_range() -> None:
    """A new int/float option without limit(...) fails here: ranges are part of defining it."""
    import argparse

    from facedub.cli import build_parser

    def subparsers(p: argparse.ArgumentParser, prefix: str = ""):
        yield prefix, p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    yield from subparsers(sp, f"{prefix} {name}".strip())

    missing = []
    for name, p in subparsers(build_parser()):
        limits = p.get_default("_limits") or {}
        for a in p._actions:
            if a.type in (int, float) and a.dest not in limits:
                missing.append(f"{name} {a.option_strings[0] if a.option_strings else a.dest}")
    assert not missing, f"numeric options without a range: {missing}"


def test_extract_into_a_folder_whose_faces_are_the_users(world: World, tmp_path: Path, capsys) -> None:  # noqa: F811
    """extract removes crops no faceset lists from OUT/faces/: a user's own faces/ folder is refused."""
    pics = tmp_path / "pictures"
    (pics / "faces").mkdir(parents=True)
    (pics / "faces" / "holiday.png").write_bytes(b"my photo")
    rc = main(["--quiet", "extract", str(world.image), "--out", str(pics)])
    _one_line(capsys, rc, str(pics), "holiday.png")
    assert (pics / "faces" / "holiday.png").read_bytes() == b"my photo"
    assert sorted(p.name for p in pics.iterdir()) == ["faces"]
