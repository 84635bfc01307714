"""A short CPU run on the shared synthetic identities (aiface1 → aiface2), faces made by extract."""

from __future__ import annotations

import json

import pytest
from PIL import Image


@pytest.fixture(scope="module")
def ai_facesets(shared_data, tmp_path_factory):
    from facedub.extract import ExtractConfig, extract_faceset

    from facedub.safety.consent import create_consent, save_consent

    root = tmp_path_factory.mktemp("ai")
    a = root / "aiface1"
    b = root / "aiface2"
    for folder, video in ((a, "aiface1/speech_256.mp4"), (b, "aiface2/intro_256.mp4")):
        consent = root / f"{folder.name}-consent.json"
        save_consent(create_consent(folder.name, "facedub tests", "training tests", synthetic=True), consent)
        extract_faceset([shared_data / "synthetic" / video], folder, ExtractConfig(every=12, max_frames=40, consent=str(consent)))
    return a, b


@pytest.mark.shared
@pytest.mark.slow
def test_lite_learns_the_synthetic_identities(ai_facesets, tmp_path):
    from facedub.train import TrainConfig, train

    a, b = ai_facesets
    s = train(
        TrainConfig(
            source=str(a), target=str(b), out=str(tmp_path / "m"), arch="lite", width=0.5, batch_size=8, lr=4e-4,
            steps=300, preview_every=25, save_every=0, seed=0,
        )
    )
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    vs, vt = meta["losses"]["val_source"], meta["losses"]["val_target"]
    assert len(vs) == 12
    # the first checks sit on the "mean face" plateau; then the identities are learnt
    assert min(vs[-3:]) < 0.85 * vs[0] and min(vt[-3:]) < 0.85 * vt[0], (vs, vt)
    assert s.val_ssim_source > 0.3 and s.val_ssim_target > 0.3
    im = Image.open(s.previews[-1])
    assert im.size[0] > 4 * 2 * 64  # four faces, input | output, at 2×
