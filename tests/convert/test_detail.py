"""The detail stage: starts as a bilinear upscale, learns a known blur back, refuses stale files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facedub.convert.detail import DetailConfig, build_net, high_pass, load_detail, train_detail
from facedub.errors import BadInput

_spec = importlib.util.spec_from_file_location("train_fakefaces", Path(__file__).parents[1] / "train" / "fakefaces.py")
fakefaces = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakefaces)


class BlurModel:
    """A swap-model stand-in whose decoders return the input blurred (σ = 1.2 px): a known softness."""

    def __init__(self, folder: Path, size: int = 32) -> None:
        from torch import nn

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.p = nn.Parameter(torch.zeros(1))

            def forward(self, x, side):  # noqa: ANN001
                return x - high_pass(x, 1.2), None

        class C:
            pass

        self.net = Net()
        self.config = C()
        self.config.size, self.config.coverage = size, 0.875
        self.folder = folder
        self.device = torch.device("cpu")
        self.meta = {"files": {"weights.safetensors": "a" * 64}}


@pytest.fixture(scope="module")
def faceset(tmp_path_factory) -> Path:
    import cv2

    fs = fakefaces.make_faceset(tmp_path_factory.mktemp("detail") / "fs", "alice", n=24, seed=3)
    for png in (fs / "faces").glob("*.png"):  # drop the drawn faces' pixel noise: nothing could learn it back
        cv2.imwrite(str(png), cv2.medianBlur(cv2.imread(str(png)), 5))
    return fs


def test_untrained_stage_is_a_bilinear_upscale() -> None:
    net = build_net(DetailConfig(scale=2, channels=8, blocks=1)).eval()
    x = torch.rand(2, 3, 16, 16)
    want = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(net(x), want, atol=1e-6)


def test_learns_the_decoders_blur_back_and_saves(tmp_path: Path, faceset: Path) -> None:
    model = BlurModel(tmp_path)
    cfg = DetailConfig(scale=2, channels=16, blocks=2, batch=8, lr=3e-3, val_faces=4, extra_blur=0.0)
    res = train_detail(model, faceset, config=cfg, steps=60, minutes=None)
    assert res.steps == 60
    # On held-out faces the trained stage is closer to the sharp crops than a bilinear upscale
    # of the blurred face (measured: 8.5 against 9.1 levels after 60 steps).
    assert res.val_l1 < 0.97 * res.val_l1_bilinear, res
    meta = json.loads((tmp_path / "detail-source.json").read_text())
    assert meta["model_weights_sha256"] == "a" * 64 and meta["training"]["steps"] == 60
    stage, why = load_detail(model, "source")
    assert why is None and stage is not None and stage.config.channels == 16
    out = stage.net(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 3, 64, 64)


def test_stale_or_damaged_stage_is_skipped_with_a_reason(tmp_path: Path, faceset: Path) -> None:
    model = BlurModel(tmp_path)
    train_detail(model, faceset, config=DetailConfig(channels=8, blocks=1, val_faces=4), steps=2, minutes=None)
    model.meta = {"files": {"weights.safetensors": "b" * 64}}  # the swap model trained on since
    stage, why = load_detail(model, "source")
    assert stage is None and "earlier state of the model" in why
    model.meta = {"files": {"weights.safetensors": "a" * 64}}
    p = tmp_path / "detail-source.safetensors"
    p.write_bytes(p.read_bytes()[:-4] + b"\0\0\0\0")
    stage, why = load_detail(model, "source")
    assert stage is None and "checksum" in why
    assert load_detail(model, "target") == (None, None)  # no stage for that side: nothing to say


def test_bad_settings_are_one_line_errors(tmp_path: Path, faceset: Path) -> None:
    with pytest.raises(BadInput, match="scale"):
        DetailConfig(scale=5)
    with pytest.raises(BadInput, match="minutes"):
        train_detail(BlurModel(tmp_path), faceset, minutes=0)
    with pytest.raises(BadInput, match="side"):
        train_detail(BlurModel(tmp_path), faceset, side="both", steps=1)


def test_convert_uses_a_matching_stage_and_pastes_the_larger_face(tmp_path: Path, faceset: Path) -> None:
    import av

    from facedub.convert import ConvertConfig, convert_video
    from tests.conftest import write_test_video

    spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).with_name("tinymodel.py"))
    helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(spec))
    if not hasattr(helpers, "FakeDetector"):
        spec.loader.exec_module(helpers)
    W, H = 128, 96
    video = write_test_video(tmp_path / "in.mp4", frames=6, size=(W, H), fps=25)
    model = helpers.InvertNet(size=32)
    model.folder, model.device = tmp_path / "model", torch.device("cpu")
    model.folder.mkdir()
    model.meta["files"] = {"weights.safetensors": "c" * 64}
    train_detail(model, faceset, config=DetailConfig(channels=8, blocks=1, val_faces=4), steps=3, minutes=None)
    cfg = ConvertConfig(batch=4, occlusion="off")
    outs = {}
    for mode in ("auto", "off"):
        out = tmp_path / f"out-{mode}.mp4"
        s = convert_video(video, model, out, cfg.with_(detail=mode), detector=helpers.FakeDetector((H, W)))
        assert s.swapped == 6
        assert s.detail_scale == (2 if mode == "auto" else 1)
        with av.open(str(out)) as c:
            outs[mode] = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(int)
    # The stage is still close to a plain upscale after 3 steps: same face, same place, finer grid.
    centre = (slice(None), slice(H // 2 - 8, H // 2 + 8), slice(W // 2 - 8, W // 2 + 8))
    assert np.abs(outs["auto"][centre] - outs["off"][centre]).mean() < 12
    # A stage trained for other weights is skipped, and the summary says so.
    model.meta["files"] = {"weights.safetensors": "d" * 64}
    s = convert_video(video, model, tmp_path / "out-stale.mp4", cfg, detector=helpers.FakeDetector((H, W)))
    assert s.detail_scale == 1 and any("earlier state of the model" in w for w in s.warnings)


def test_cli_checks_the_model_folder_before_any_work(tmp_path: Path, faceset: Path, capsys) -> None:
    from facedub.cli import main

    assert main(["--quiet", "detail", "--model", str(tmp_path / "missing"), "--faceset", str(faceset), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]
    assert main(["--quiet", "detail", "--model", str(tmp_path), "--faceset", str(faceset), "--minutes", "0"]) == 2
    assert not any(tmp_path.iterdir())
