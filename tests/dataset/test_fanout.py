"""Without shared media: generated clips, an untrained tiny model and a fixed stand-in face.
Items are independent calls (picklable, any order), as a scheduler would run them."""

import importlib.util
import json
import pickle
import sys
from pathlib import Path

import pytest
from tests.conftest import write_test_video

from facedub.dataset import build_item, finish_build, pending_items, prepare_build
from facedub.safety.consent import create_consent, save_consent

_spec = importlib.util.spec_from_file_location("convert_tinymodel", Path(__file__).parents[1] / "convert" / "tinymodel.py")
helpers = sys.modules.setdefault("convert_tinymodel", importlib.util.module_from_spec(_spec))
if not hasattr(helpers, "FakeDetector"):
    _spec.loader.exec_module(helpers)

W, H = 128, 96


def _untrained_model(folder: Path, source, target) -> None:
    consent = {"source": source.to_dict(), "target": target.to_dict()}
    helpers.save_untrained_lite(folder, consent, target_descriptor=None, source_descriptor=None)


@pytest.fixture
def spec(tmp_path):
    recs = {i: create_consent(f"synthetic {i}", "facedub tests", "dataset tests", synthetic=True) for i in ("a", "b", "c")}
    for i, r in recs.items():
        save_consent(r, tmp_path / f"{i}.json")
    _untrained_model(tmp_path / "m-ab", recs["a"], recs["b"])
    _untrained_model(tmp_path / "m-cb", recs["c"], recs["b"])
    for k in range(2):
        write_test_video(tmp_path / f"clip{k}.mp4", frames=8, size=(W, H), audio=k == 0)
    p = tmp_path / "spec.toml"
    p.write_text("""
[dataset]
frames = 6
[identities.a]
consent = "a.json"
[identities.b]
consent = "b.json"
[identities.c]
consent = "c.json"
[[pairs]]
source = "a"
target = "b"
model = "m-ab"
clips = ["clip0.mp4", "clip1.mp4"]
[[pairs]]
source = "c"
target = "b"
model = "m-cb"
clips = ["clip0.mp4"]
""")
    return p


def test_items_are_independent_calls_in_any_order(spec, tmp_path):
    out = tmp_path / "ds"
    plan, staging, _ = prepare_build(spec, out)
    items = pending_items(plan, staging)
    assert [i.key for i in items] == ["b-clip0_a", "b-clip1_a", "b-clip0_c"]
    # one real clip per input clip, written by the first item that swaps it
    assert [i.writes_real for i in items] == [True, True, False]
    plan2, items2 = pickle.loads(pickle.dumps((plan, items)))  # what a scheduler ships to a worker
    assert plan2 == plan and items2 == items
    for item in reversed(items2):
        st = build_item(plan2, item, staging, detector=helpers.FakeDetector((H, W)))
        assert st["done"] and st["frames"] == 6 and st["mask_iou"]["min"] >= 0.95
    assert pending_items(plan, staging) == []
    s = finish_build(plan, staging, out, built=3)
    assert out.is_dir() and not staging.exists()
    assert s.items == 3 and s.real == 2 and s.mask_iou_min >= 0.95
    assert s.splits["train"] == ["a", "b", "c"]  # one linked group: all in one split
    assert any("split val is empty" in n for n in s.notes)
    masks = out / "manipulated_sequences" / "facedub-lite" / "masks"
    assert sorted(p.name for p in masks.iterdir()) == ["b-clip0_a", "b-clip0_c", "b-clip1_a"]
    lab = json.loads((out / "labels" / "manipulated" / "facedub-lite" / "b-clip0_c.json").read_text())
    from facedub.convert.config import ConvertConfig

    crf = ConvertConfig().crf  # the spec sets no crf: the folder is named after convert's default
    assert lab["original"] == f"original_sequences/facedub/c{crf}/videos/b-clip0.mp4" and lab["model_step"] == 0


def test_finishing_before_every_item_is_built_is_refused(spec, tmp_path):
    from facedub.errors import BadInput

    plan, staging, _ = prepare_build(spec, tmp_path / "ds")
    with pytest.raises(BadInput, match="not finished"):
        finish_build(plan, staging, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
