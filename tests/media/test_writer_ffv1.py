"""VideoWriter's FFV1 output: lossless RGB in Matroska (8-bit bgr0, 16-bit gbrp16le)."""

import av
import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.media.writer import VideoWriter


def _decode(path, fmt):
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return st.codec_context.name, st.codec_context.pix_fmt, dict(c.metadata), [f.to_ndarray(format=fmt) for f in c.decode(st)]


@pytest.mark.parametrize("bits,dtype,fmt,pix", [(8, np.uint8, "rgb24", "bgr0"), (16, np.uint16, "rgb48le", "gbrp16le")])
def test_ffv1_decodes_to_the_frames_written_bit_for_bit(tmp_path, bits, dtype, fmt, pix):
    rng = np.random.default_rng(bits)
    hi = np.iinfo(dtype).max
    frames = [rng.integers(0, hi + 1, (48, 97, 3)).astype(dtype) for _ in range(4)]  # noise, odd width
    out = tmp_path / "m.mkv"
    w = VideoWriter(out, 97, 48, 24, codec="ffv1", bits=bits, metadata={"facedub_output_id": "0123456789ab"})
    for i, f in enumerate(frames):
        w.write(f, i / 24)
    w.close()
    assert w.notes == [] and [p.name for p in tmp_path.iterdir()] == ["m.mkv"]
    name, got_pix, meta, got = _decode(out, fmt)
    assert name == "ffv1" and got_pix == pix
    assert {k.lower(): v for k, v in meta.items()}["facedub_output_id"] == "0123456789ab"
    assert len(got) == 4 and all(np.array_equal(g, f) for g, f in zip(got, frames))


def test_ffv1_16bit_writer_takes_8bit_frames_exactly(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    out = tmp_path / "m.mkv"
    with VideoWriter(out, 32, 32, 24, codec="ffv1", bits=16) as w:
        w.write(rgb)
    assert np.array_equal(_decode(out, "rgb48le")[3][0], rgb.astype(np.uint16) * 257)


def test_ffv1_needs_mkv(tmp_path):
    with pytest.raises(BadInput, match=r"ffv1 is written in a Matroska \.mkv file; name the output \.mkv"):
        VideoWriter(tmp_path / "m.mov", 64, 64, 24, codec="ffv1")
    w = VideoWriter(tmp_path / "8.mkv", 64, 64, 24, codec="ffv1")
    with pytest.raises(ValueError, match="16-bit frame"):
        w.write(np.zeros((64, 64, 3), np.uint16))
    w.abort()
    assert not list(tmp_path.iterdir())
