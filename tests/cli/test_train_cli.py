"""``facedub train`` and ``facedub model show`` through ``facedub.cli.main``: runs and refusals."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from facedub.cli import main

FAKE = Path(__file__).resolve().parents[1] / "train" / "fakefaces.py"


def _fakefaces():
    spec = importlib.util.spec_from_file_location("fakefaces_cli", FAKE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    ff = _fakefaces()
    root = tmp_path_factory.mktemp("cli_sets")
    a = ff.make_faceset(root / "a", "alice", n=24, seed=0)
    b = ff.make_faceset(root / "b", "bob", n=24, seed=1)
    three = ff.make_faceset(root / "three", "bob", n=3, seed=2)
    empty = ff.make_faceset(root / "empty", "bob", n=0, seed=3)
    return a, b, three, empty


TINY = ["--arch", "lite", "--size", "32", "--width", "0.25", "--batch-size", "4", "--threads", "1", "--precision", "fp32"]


def _train(a, b, out, *extra):
    return main(["--quiet", "train", "--source", str(a), "--target", str(b), "--out", str(out), *TINY, *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_train_then_show(sets, tmp_path, capsys):
    a, b, _, _ = sets
    assert _train(a, b, tmp_path / "m", "--steps", "6", "--preview-every", "3") == 0
    out = capsys.readouterr().out
    assert "6 steps in total" in out and "validation loss" in out
    assert len(list((tmp_path / "m" / "previews").glob("*.png"))) == 2
    assert main(["model", "show", str(tmp_path / "m")]) == 0
    shown = capsys.readouterr().out
    assert "lite" in shown and "6 steps" in shown and "(alice, synthetic, expires never)" in shown
    assert main(["model", "show", str(tmp_path / "m"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["step"] == 6 and d["size"] == 32 and d["consent"]["source"]["subject"] == "alice"
    assert _train(a, b, tmp_path / "m", "--steps", "2", "--resume") == 0
    assert json.loads((tmp_path / "m" / "model.json").read_text())["step"] == 8


@pytest.mark.parametrize(
    "which, message",
    [("three", "has 3 faces; training needs at least 20"), ("empty", "has no faces"), ("missing", "no such faceset")],
)
def test_bad_facesets(sets, tmp_path, capsys, which, message):
    a, b, three, empty = sets
    bad = {"three": three, "empty": empty, "missing": tmp_path / "nope"}[which]
    assert _train(a, bad, tmp_path / "m", "--steps", "2") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_refusals_do_not_touch_an_existing_model(sets, tmp_path, capsys, monkeypatch):
    a, b, _, _ = sets
    out = tmp_path / "m"
    assert _train(a, b, out, "--steps", "2") == 0
    capsys.readouterr()
    before = _snapshot(out)

    def check(code_args, message):
        assert _train(a, b, out, *code_args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert _snapshot(out) == before

    check(["--steps", "2"], "a model already exists here")
    check(["--steps", "2", "--resume", "--arch", "original"], "cannot resume it as 'original'")
    # out of memory on the first step
    import facedub.train.loop as loop

    def boom(*args, **kw):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with monkeypatch.context() as m:
        m.setattr(loop, "reconstruction_loss", boom)
        check(["--steps", "2", "--resume"], "--batch-size 4 does not fit")
    # a corrupted checkpoint
    opt = out / "optimizer.safetensors"
    data = bytearray(opt.read_bytes())
    data[len(data) // 2] ^= 0x55
    opt.write_bytes(bytes(data))
    before = _snapshot(out)
    check(["--steps", "2", "--resume"], "corrupted")
    (out / "model.json").write_text("{broken")
    before = _snapshot(out)
    check(["--steps", "2", "--resume"], "corrupt model file")


def test_usage_errors(sets, tmp_path, capsys):
    a, b, _, _ = sets
    assert _train(a, b, tmp_path / "m", "--steps", "0") == 2
    assert "--steps 0: must be at least 1" in capsys.readouterr().err
    assert _train(a, b, tmp_path / "m", "--resume", "--steps", "1") == 2
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse usage error
        main(["train", "--source", str(a), "--target", str(b), "--out", str(tmp_path / "m"), "--steps", "1", "--minutes", "1"])
    assert e.value.code == 2
    assert main(["model", "show", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "m").exists()
