"""Helpers shared by the convert tests: a briefly trained tiny model and a fake detector.

Imported by path (tests are not a package): ``load_helpers()`` in the test modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIP = ("synthetic", "aiface1", "speech_512.mp4")


def consent_meta() -> dict:
    """model.json["consent"] as training writes it: valid synthetic records for both identities."""
    from facedub.safety.consent import create_consent

    return {
        role: create_consent(f"test {role}", "facedub tests", "convert tests", synthetic=True).to_dict()
        for role in ("source", "target")
    }


def save_untrained_lite(folder: Path, consent: dict | None = None, **meta) -> Path:
    """A real, untrained ``lite`` model at a quarter width (seed 0) saved with the model API in
    ``folder``; ``consent`` defaults to :func:`consent_meta`, ``meta`` adds model.json fields."""
    import torch

    from facedub.model import build_model, default_config
    from facedub.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = default_config("lite", width=0.25)
    info = {"arch": "lite", "config": cfg.to_dict(), "step": 0, **meta, "consent": consent_meta() if consent is None else consent}
    save_checkpoint(folder, build_model("lite", cfg), info)
    return folder


def with_marks_of(output: Path, rgb: np.ndarray) -> np.ndarray:
    """``rgb`` carrying the marks every frame of ``output`` got: the visible label and the
    invisible watermark of its output id (read back from the file's tags)."""
    from facedub.safety.label import Labeler
    from facedub.safety.verify import verify_file
    from facedub.safety.watermark import Watermarker

    output_id = verify_file(output).output_id
    assert output_id, f"{output} carries no output id"
    return Watermarker(output_id).embed(Labeler().apply(rgb))


def train_tiny_model(folder: Path, video: Path, steps: int = 40, seed: int = 0) -> Path:
    """A ``lite`` model at a quarter width, trained ``steps`` Adam steps to reconstruct crops of
    ``video``'s face with both decoders, saved with the model API. Takes a few seconds."""
    import torch

    from facedub.faces.align import CROP_SIZE, align_matrix, crop_to_model, warp
    from facedub.faces.detect import FaceDetector
    from facedub.media.reader import open_media
    from facedub.model import build_model, default_config
    from facedub.model.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    cfg = default_config("lite", width=0.25)
    net = build_model("lite", cfg)
    crops = []
    with FaceDetector() as det:
        for f in open_media(video).frames(every=10, limit=8):
            faces = det.detect(f.rgb)
            if faces:
                crop = warp(f.rgb, align_matrix(faces[0].points5), CROP_SIZE)
                crops.append(crop_to_model(crop, cfg.coverage, cfg.size))
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in range(steps):
        (a, _), (b, _) = net.forward_both(x, x)
        loss = (a - x).abs().mean() + (b - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    meta = {"arch": "lite", "config": cfg.to_dict(), "step": steps, "target_descriptor": None, "source_descriptor": None, "consent": consent_meta()}
    save_checkpoint(folder, net, meta)
    return folder


@dataclass(frozen=True)
class FakeFace:
    bbox: tuple[float, float, float, float]
    score: float
    landmarks68: np.ndarray
    track: int = 0


def mean_face_68(center: tuple[float, float], width: float) -> np.ndarray:
    """A plausible frontal 68-point layout (iBUG order) of a face ``width`` px wide."""
    from facedub.faces.align import TEMPLATE5

    # Build from the 5-point template: jaw on an ellipse, brows, nose, eyes, mouth around it.
    t = (TEMPLATE5 - 0.5) * 2.0  # roughly [-0.5, 0.5] around the centre after scaling below
    eye_l, eye_r, nose, m_l, m_r = t
    pts = []
    for a in np.linspace(np.pi * 0.95, np.pi * 0.05, 17):  # jaw, left to right, through the chin
        pts.append([np.cos(a) * 0.55, -0.05 + np.sin(a) * 0.62])
    for k in range(5):
        pts.append([eye_l[0] - 0.15 + 0.075 * k, eye_l[1] - 0.15])
    for k in range(5):
        pts.append([eye_r[0] - 0.15 + 0.075 * k, eye_r[1] - 0.15])
    for k in range(4):
        pts.append([0.0, eye_l[1] + (nose[1] - eye_l[1]) * k / 3])
    for k in range(5):
        pts.append([-0.1 + 0.05 * k, nose[1] + 0.02])
    for eye in (eye_l, eye_r):
        for a in np.linspace(0, 2 * np.pi, 6, endpoint=False):
            pts.append([eye[0] + 0.07 * np.cos(a + np.pi), eye[1] + 0.03 * np.sin(a + np.pi)])
    for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):  # outer lip from the left corner
        pts.append([0.5 * (m_l[0] + m_r[0]) - 0.5 * (m_r[0] - m_l[0]) * np.cos(a), m_l[1] + 0.06 * np.sin(a)])
    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        pts.append([0.5 * (m_l[0] + m_r[0]) - 0.4 * (m_r[0] - m_l[0]) * np.cos(a), m_l[1] + 0.02 * np.sin(a)])
    arr = np.array(pts, dtype=np.float64)
    assert arr.shape == (68, 2)
    return arr * width + np.asarray(center, dtype=np.float64)


class FakeDetector:
    """Returns a fixed face on the frames ``present(index)`` says, nothing on the others."""

    def __init__(self, shape: tuple[int, int], present=lambda i: True, jitter: float = 0.0, seed: int = 0) -> None:
        h, w = shape
        self.lm = mean_face_68((w / 2, h / 2), 0.5 * min(w, h))
        self.present = present
        self.calls = 0
        self.jitter = jitter
        self.rng = np.random.default_rng(seed)

    def detect(self, rgb: np.ndarray):
        i = self.calls
        self.calls += 1
        if not self.present(i):
            return []
        lm = self.lm + self.rng.normal(0, self.jitter, self.lm.shape) if self.jitter else self.lm
        x0, y0 = lm.min(axis=0)
        x1, y1 = lm.max(axis=0)
        return [FakeFace((x0, y0, x1, y1), 0.9, lm)]


class InvertNet:
    """A model stand-in whose source decoder returns the inverted input: an obvious, known change."""

    def __init__(self, size: int = 32, coverage: float = 0.6875, learned: bool = False, mask_value: float = 1.0) -> None:
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.p = nn.Parameter(torch.zeros(1))

            def forward(self, x, side):  # noqa: ANN001
                return 1.0 - x, (torch.full_like(x[:, :1], mask_value) if learned else None)

        self.net = Net()

        class C:
            pass

        self.config = C()
        self.config.size, self.config.coverage = size, coverage
        self.meta = {"arch": "stand-in", "consent": consent_meta()}
