"""The stages pass through facedub.safety.policy inside their own functions: the CLI, the web UI
and any script get the same decisions. The refusal path uses a stand-in classifier that flags
an all-red card (no explicit media anywhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedub.cli import main
from facedub.errors import ContentRefused
from facedub.safety import content_gate as cg

from tests.safety.test_content_gate import StandIn, _write


@pytest.fixture
def red_card_gate(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """Make the default classifier the stand-in, as if nudenet had flagged red frames."""
    stand_in = StandIn()
    monkeypatch.setattr(cg, "_default", stand_in)
    return stand_in


def test_extract_refuses_flagged_video_and_writes_nothing(tmp_path: Path, red_card_gate: StandIn, capsys) -> None:
    from facedub.extract import ExtractConfig, extract_faceset

    video = _write(tmp_path / "v.mp4", 40, set(range(10, 40)), fps=10)
    with pytest.raises(ContentRefused):
        extract_faceset([video], tmp_path / "fs", ExtractConfig())
    assert red_card_gate.calls >= 4
    assert not (tmp_path / "fs" / "faceset.json").exists()
    code = main(["--quiet", "extract", str(video), "--out", str(tmp_path / "fs2")])
    err = capsys.readouterr().err
    assert code == 1 and str(video) in err and "Traceback" not in err
    assert not (tmp_path / "fs2" / "faceset.json").exists()


def test_extract_runs_the_gate_on_benign_input(tmp_path: Path, red_card_gate: StandIn) -> None:
    from facedub.extract import ExtractConfig, extract_faceset
    from facedub.errors import BadInput

    video = _write(tmp_path / "v.mp4", 20, set(), fps=10)
    with pytest.raises(BadInput):  # passes the gate, then: no face in a grey card
        extract_faceset([video], tmp_path / "fs", ExtractConfig())
    assert red_card_gate.calls >= 3  # first, 1/s, last frame were scored


def _convert_helpers():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).parents[1] / "convert" / "tinymodel.py")
    mod = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(spec))
    if not hasattr(mod, "FakeDetector"):
        spec.loader.exec_module(mod)
    return mod


def test_convert_refuses_flagged_target_and_writes_nothing(tmp_path: Path, red_card_gate: StandIn) -> None:
    from facedub.convert import ConvertConfig, convert_video

    h = _convert_helpers()
    video = _write(tmp_path / "v.mp4", 30, set(range(0, 30)), fps=10)
    with pytest.raises(ContentRefused):
        convert_video(video, h.InvertNet(), tmp_path / "o.mp4", ConvertConfig(), detector=h.FakeDetector((48, 64)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_convert_needs_valid_consent_in_the_model(tmp_path: Path) -> None:
    import datetime as dt

    from facedub.convert import ConvertConfig, convert_video
    from facedub.errors import ConsentMissing
    from facedub.safety.consent import create_consent

    h = _convert_helpers()
    video = _write(tmp_path / "v.mp4", 10, set(), fps=10)
    model = h.InvertNet()
    model.meta = {"arch": "stand-in"}
    with pytest.raises(ConsentMissing):
        convert_video(video, model, tmp_path / "o.mp4", ConvertConfig(), detector=h.FakeDetector((48, 64)))
    # A record that has expired since training is refused at convert time.
    past = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    old = create_consent("x", "y", "z", expires="2020-06-01", synthetic=True, now=past).to_dict()
    model.meta = {"arch": "stand-in", "consent": {"source": old, "target": h.consent_meta()["target"]}}
    with pytest.raises(ConsentMissing, match="expire"):
        convert_video(video, model, tmp_path / "o.mp4", ConvertConfig(), detector=h.FakeDetector((48, 64)))
    assert not (tmp_path / "o.mp4").exists()


def test_train_refuses_facesets_without_consent(tmp_path: Path, capsys) -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("fakefaces", Path(__file__).parents[1] / "train" / "fakefaces.py")
    ff = sys.modules.setdefault("fakefaces", importlib.util.module_from_spec(spec))
    if not hasattr(ff, "make_faceset"):
        spec.loader.exec_module(ff)
    a = ff.make_faceset(tmp_path / "a", "alice", n=24, seed=0)
    b = ff.make_faceset(tmp_path / "b", "bob", n=24, seed=1, consent=False)
    code = main(["--quiet", "train", "--source", str(a), "--target", str(b), "--out", str(tmp_path / "m"), "--steps", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "consent" in err and str(b) in err and "Traceback" not in err
    assert not (tmp_path / "m" / "model.json").exists()
