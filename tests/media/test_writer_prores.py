"""VideoWriter's ProRes 4444 MOV output (16-bit RGB in, 10-bit 4:4:4 in the file)."""

import av
import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.media.writer import VideoWriter


@pytest.mark.parametrize("width", [96, 97, 98])
def test_prores4444_keeps_16bit_ramps_within_two_levels(tmp_path, width):
    """Within 2 levels of 8 bits after FFmpeg decodes it again (10-bit 4:4:4 and FFmpeg's own
    YUV → RGB on the way back); any width (FFmpeg's own RGB48 conversion garbled 97 and 98)."""
    yy, xx = np.mgrid[0:64, 0:width]  # an odd width: 4:4:4 needs no padding
    rgb = np.stack([xx * 600, yy * 900, (xx + yy) * 300], -1).astype(np.uint16)
    out = tmp_path / "m.mov"
    w = VideoWriter(out, width, 64, 24, codec="prores4444", metadata={"facedub_output_id": "0123456789ab"})
    for i in range(3):
        w.write(rgb, i / 24)
    w.close()
    assert w.notes == []
    with av.open(str(out)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "prores" and st.codec_context.profile == "4444"
        assert c.metadata["facedub_output_id"] == "0123456789ab"
        frames = [f.to_ndarray(format="rgb48le") for f in c.decode(st)]
    assert len(frames) == 3 and frames[0].shape == (64, width, 3)
    assert np.abs(frames[0].astype(int) - rgb).max() / 257 <= 2.0  # 8-bit levels


def test_prores_needs_mov_and_codecs_are_checked(tmp_path):
    with pytest.raises(BadInput, match=r"\.mov"):
        VideoWriter(tmp_path / "m.mp4", 64, 64, 24, codec="prores4444")
    with pytest.raises(BadInput, match="codec 'dnxhr'"):
        VideoWriter(tmp_path / "m.mov", 64, 64, 24, codec="dnxhr")
    assert not list(tmp_path.iterdir())
