"""faceset statistics and the contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tests.faceset.test_faceset_schema import make_faceset

from facedub.faceset.show import contact_sheet, faceset_stats


def test_stats_spreads_and_identity() -> None:
    fs = make_faceset(5)
    st = faceset_stats(fs)
    assert st.faces == 5 and st.sources == 1 and st.removed == 1 and st.has_consent
    assert st.with_descriptor == 1 and st.identity_mean_distance == 0.0 and st.identity_outliers == 0
    assert st.yaw is not None and st.yaw.median == 1.0 and st.roll.max == 3.5
    assert st.sharpness.min == st.sharpness.max == 123.4
    text = "\n".join(st.lines())
    assert "5 faces" in text and "one person" in text and "yaw" in text


def test_identity_outlier_is_counted() -> None:
    from dataclasses import replace

    fs = make_faceset(4)
    rng = np.random.default_rng(3)
    base = rng.normal(0, 0.05, 128)
    faces = list(fs.faces)
    for i in range(3):
        faces[i] = replace(faces[i], descriptor=tuple(base + rng.normal(0, 0.005, 128)))
    faces[3] = replace(faces[3], descriptor=tuple(base + 0.2))  # ~2.3 away: someone else
    st = faceset_stats(replace(fs, faces=tuple(faces)))
    assert st.with_descriptor == 4 and st.identity_outliers >= 1
    assert "someone else" in "\n".join(st.lines())


def test_contact_sheet_is_a_grid_of_the_crops(tmp_path: Path) -> None:
    fs = make_faceset(3)
    (tmp_path / "faces").mkdir()
    colours = [(255, 0, 0), (0, 255, 0)]
    for f, c in zip(fs.faces[:2], colours):  # third crop missing: shown grey, no crash
        Image.new("RGB", (256, 256), c).save(tmp_path / f.file)
    out = contact_sheet(fs, tmp_path, tmp_path / "sheet.png", thumb=32, columns=2)
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape == (2 * (32 + 14), 64, 3)
    assert tuple(sheet[10, 10]) == (255, 0, 0)
    assert tuple(sheet[10, 42]) == (0, 255, 0)
    assert tuple(sheet[46 + 10, 10]) == (128, 128, 128)
