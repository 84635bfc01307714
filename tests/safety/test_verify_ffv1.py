"""An FFV1 .mkv output: lossless pixels (the plate changed by the mark alone), tags in the
Matroska metadata, no C2PA (no binding), and the manifest's sha256 as its integrity check."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

from facedub.cli import main
from facedub.media.writer import VideoWriter
from facedub.safety import policy, provenance
from facedub.safety.verify import verify_file

from .conftest import textured_frames


def _write_mkv(path: Path, frames: list[np.ndarray], ctx: policy.OutputContext, bits: int = 8) -> list[np.ndarray]:
    marked = [policy.mark_frame(f, ctx) for f in frames]
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, 25, codec="ffv1", bits=bits, metadata=ctx.writer_metadata()) as wr:
        for m in marked:
            wr.write(m)
    return marked


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _finished(tmp_path: Path) -> tuple[policy.OutputContext, Path, list[np.ndarray], list[np.ndarray]]:
    ctx = policy.OutputContext(provenance.output_info([], {"id": "model-1"}, visible_label=False))
    frames = textured_frames(12)
    out = tmp_path / "out.mkv"
    marked = _write_mkv(out, frames, ctx)
    policy.finalize_output(out, ctx)
    return ctx, out, frames, marked


def test_ffv1_round_trip_is_lossless_and_the_plate_differs_by_the_mark_alone(tmp_path):
    ctx, out, frames, marked = _finished(tmp_path)
    got = _decode(out)
    assert len(got) == len(frames)
    for g, m, f in zip(got, marked, frames):
        assert np.array_equal(g, m)  # bit for bit what was written (after the tags remux): plate + mark
        assert np.any(g != f) and np.abs(g.astype(int) - f).max() <= 12


def test_verify_finds_every_mark_and_the_manifest_hash_matches(tmp_path, capsys):
    ctx, out, _, _ = _finished(tmp_path)
    man = json.loads(provenance.manifest_path(out).read_text())
    assert man["c2pa"] is False and man["output"] == "out.mkv"
    r = verify_file(out)
    assert r.marked and not r.altered and r.output_id == ctx.output_id
    assert r.watermark.found and r.watermark.output_id == ctx.output_id
    assert r.tags.found and r.tags.output_id == ctx.output_id
    assert r.manifest.found and r.manifest.sha256_matches
    assert not r.c2pa.present
    assert main(["verify", str(out)]) == 0
    assert "ALTERED" not in capsys.readouterr().out


def test_a_tampered_mkv_fails_verify(tmp_path, capsys):
    """The pixels edited and written back with the same tags: the watermark and the tags are
    still there, but the file is not the one its manifest lists: altered, exit 3."""
    ctx, out, _, _ = _finished(tmp_path)
    frames = _decode(out)
    frames[5][100:140, 100:140] = 255  # a patch painted over one frame
    edited = tmp_path / "edited.mkv"
    with VideoWriter(edited, 256, 256, 25, codec="ffv1", metadata=ctx.writer_metadata()) as wr:
        for f in frames:
            wr.write(f)
    edited.replace(out)  # under the original name, beside the original manifest
    r = verify_file(out)
    assert r.marked and r.watermark.found and r.tags.found
    assert r.altered and r.manifest.present and not r.manifest.sha256_matches
    assert main(["verify", str(out)]) == 3
    assert "ALTERED since facedub wrote it" in capsys.readouterr().out
    # one byte of the file changed: the same
    (tmp_path / "b").mkdir()
    _, out2, _, _ = _finished(tmp_path / "b")
    data = bytearray(out2.read_bytes())
    data[-100] ^= 0x01
    out2.write_bytes(bytes(data))
    assert main(["verify", str(out2), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["altered"] is True
