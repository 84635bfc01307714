"""Image sequences: patterns, frame listing, exact round trips, colour, bad inputs."""

from pathlib import Path

import numpy as np
import pytest

from facedub.errors import BadInput
from facedub.media import sequence as seq


def _gradient16(h=40, w=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)


def _write_seq(folder: Path, pattern: str, frames, make):
    folder.mkdir(parents=True, exist_ok=True)
    p = seq.parse_pattern(str(folder / pattern))
    for n in frames:
        arr, pixel = make(n)
        seq.write_frame(p.path(n), arr, pixel)
    return p


# ----------------------------------------------------------------------------------------
# Patterns


@pytest.mark.parametrize(
    "text, prefix, pad, suffix, n, name",
    [
        ("plates/shot.%04d.exr", "shot.", 4, ".exr", 1001, "shot.1001.exr"),
        ("shot.%04d.exr", "shot.", 4, ".exr", 7, "shot.0007.exr"),
        ("shot_%d.png", "shot_", 0, ".png", 12, "shot_12.png"),
        ("a/b/shot.####.tif", "shot.", 4, ".tif", 42, "shot.0042.tif"),
        ("x.#.tiff", "x.", 1, ".tiff", 3, "x.3.tiff"),
    ],
)
def test_parse_pattern(text, prefix, pad, suffix, n, name):
    p = seq.parse_pattern(text)
    assert (p.prefix, p.pad, p.suffix) == (prefix, pad, suffix)
    assert p.name(n) == name and p.number(name) == n
    assert p.path(n) == Path(text).parent / name


def test_pattern_numbers_and_non_patterns():
    p = seq.parse_pattern("shot.%04d.exr")
    assert p.number("shot.10000.exr") == 10000  # past the padding
    assert p.number("shot.001.exr") is None and p.number("shot.1001.png") is None and p.number("shot.1a01.exr") is None
    assert seq.parse_pattern("clip.mp4") is None and not seq.is_sequence("clip.mp4")
    assert seq.is_sequence("out/shot.%04d.exr")
    assert p.stem() == "shot"
    with pytest.raises(BadInput, match="one frame number"):
        seq.parse_pattern("s.%04d.%04d.exr")
    with pytest.raises(BadInput, match="folder name"):
        seq.parse_pattern("take_%02d/shot.exr")


def test_parse_range():
    assert seq.parse_range("1001-1100") == (1001, 1100)
    assert seq.parse_range("5") == (5, 5)
    for bad in ("10-5", "a-b", "1001:1100", "-3"):
        with pytest.raises(BadInput, match="--frames"):
            seq.parse_range(bad)


def test_frames_on_disk_starts_where_the_folder_does(tmp_path):
    p = _write_seq(tmp_path, "shot.%04d.png", range(1001, 1006), lambda n: (_gradient16(seed=n), "uint16"))
    (tmp_path / "shot.1006.png.tmp").write_bytes(b"")  # not a frame
    (tmp_path / "other.1007.png").write_bytes(b"")
    assert seq.frames_on_disk(p) == [1001, 1002, 1003, 1004, 1005]
    s = seq.scan_sequence(p)
    assert s.frames == (1001, 1002, 1003, 1004, 1005) and (s.info.width, s.info.height, s.info.pixel) == (48, 40, "uint16")
    assert seq.scan_sequence(p, (1002, 1003)).frames == (1002, 1003)


# ----------------------------------------------------------------------------------------
# Exact round trips


def test_png16_and_tiff16_round_trip_exactly(tmp_path):
    a = _gradient16()
    for name in ("f.png", "f.tif", "f.tiff"):
        seq.write_frame(tmp_path / name, a, "uint16", {"facedub_output_id": "0123456789ab"})
        back = seq.read_frame(tmp_path / name)
        assert back.dtype == np.uint16 and np.array_equal(back, a), name
        assert seq.read_text_tags(tmp_path / name)["facedub_output_id"] == "0123456789ab"
        assert seq.frame_info(tmp_path / name).pixel == "uint16"


def test_png8_round_trip_and_rgba_tiff(tmp_path):
    a8 = _gradient16().astype(np.uint8)
    seq.write_frame(tmp_path / "f.png", a8, "uint8")
    assert np.array_equal(seq.read_frame(tmp_path / "f.png"), a8)
    rgba = np.concatenate([_gradient16(), _gradient16(seed=1)[..., :1]], axis=2)
    seq.write_frame(tmp_path / "a.tif", rgba, "uint16")
    import cv2

    back = cv2.imread(str(tmp_path / "a.tif"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(back[..., [2, 1, 0, 3]], rgba)


@pytest.mark.parametrize("pixel", ["half", "float"])
def test_exr_round_trip_exactly(tmp_path, pixel):
    rng = np.random.default_rng(3)
    # scene-linear values: negatives, highlights far above 1, tiny values
    a = (rng.standard_normal((40, 48, 3)) * 4.0).astype(np.float32)
    a[0, 0] = [1e-4, 65000.0 if pixel == "half" else 1e6, -2.5]
    stored = a.astype(np.float16).astype(np.float32) if pixel == "half" else a
    seq.write_frame(tmp_path / "f.exr", a, pixel, {"facedub_output_id": "0123456789ab"})
    back = seq.read_frame(tmp_path / "f.exr")
    assert back.dtype == np.float32 and np.array_equal(back, stored)
    info = seq.frame_info(tmp_path / "f.exr")
    assert (info.width, info.height, info.pixel) == (48, 40, pixel)
    assert seq.read_text_tags(tmp_path / "f.exr")["facedub_output_id"] == "0123456789ab"


def test_writes_are_reproducible(tmp_path):
    a = _gradient16()
    for i in (1, 2):
        seq.write_frame(tmp_path / f"{i}.png", a, "uint16", {"k": "v"})
        seq.write_frame(tmp_path / f"{i}.tif", a, "uint16", {"k": "v"})
        seq.write_frame(tmp_path / f"{i}.exr", a.astype(np.float32) / 65535, "half", {"k": "v"})
    for ext in ("png", "tif", "exr"):
        assert (tmp_path / f"1.{ext}").read_bytes() == (tmp_path / f"2.{ext}").read_bytes(), ext


def test_unit_conversion_is_exact_for_integers():
    a = _gradient16()
    assert np.array_equal(seq.from_unit(seq.to_unit(a), "uint16"), a)
    b = a.astype(np.uint8)
    assert np.array_equal(seq.from_unit(seq.to_unit(b), "uint8"), b)


# ----------------------------------------------------------------------------------------
# Colour


def test_colour_linear_exr_to_display_and_back():
    c = seq.Colour(seq.ColourConfig(), "exr")
    assert not c.identity and c.plate_space == seq.LINEAR_SPACE
    lin = np.array([[[0.0, 0.18, 1.0], [0.0031308, 0.5, 4.0]]], np.float32)
    view = c.to_view(lin)
    # the sRGB curve: 18 % grey shows at about 0.46, 1.0 at 1.0, the toe is linear (×12.92)
    assert abs(view[0, 0, 1] - 0.4613) < 2e-3 and abs(view[0, 0, 2] - 1.0) < 1e-4 and abs(view[0, 1, 0] - 0.04045) < 1e-4
    assert view[0, 1, 2] > 1.0  # highlights are not clipped by the transform
    assert np.allclose(c.from_view(view), lin, rtol=1e-3, atol=1e-5)
    assert seq.display8(view)[0, 0].tolist() == [0, 118, 255]


def test_colour_of_srgb_plates_is_the_identity():
    c = seq.Colour(seq.ColourConfig(), "png")
    x = np.random.default_rng(0).random((4, 4, 3)).astype(np.float32)
    assert c.identity and np.array_equal(c.to_view(x), x) and np.array_equal(c.from_view(x), x)


def test_unknown_colour_space_is_one_line():
    with pytest.raises(BadInput, match="not in the OpenColorIO config"):
        seq.Colour(seq.ColourConfig(plate_space="No Such Space"), "exr")


def test_reader_gives_display_frames_numbered_as_on_disk(tmp_path):
    lin = np.full((32, 40, 3), 0.18, np.float32)
    p = _write_seq(tmp_path, "s.%04d.exr", range(1001, 1004), lambda n: (lin * (1 + 0.1 * (n - 1001)), "float"))
    r = seq.SequenceReader(seq.scan_sequence(p), fps=24)
    frames = list(r)
    assert [f.index for f in frames] == [1001, 1002, 1003] and frames[1].time == pytest.approx(1 / 24)
    assert frames[0].rgb.dtype == np.uint8 and frames[0].rgb.shape == (32, 40, 3)
    assert abs(int(frames[0].rgb[0, 0, 0]) - 118) <= 1
    assert np.array_equal(r.read_plate(1002), lin * np.float32(1.1))


# ----------------------------------------------------------------------------------------
# Bad input: one line naming the file


def test_missing_frame_names_the_file(tmp_path):
    p = _write_seq(tmp_path, "shot.%04d.png", [1001, 1002, 1004], lambda n: (_gradient16(), "uint16"))
    with pytest.raises(BadInput) as e:
        seq.scan_sequence(p)
    msg = str(e.value)
    assert "shot.1003.png" in msg and "missing" in msg and "\n" not in msg
    assert seq.scan_sequence(p, (1001, 1002)).frames == (1001, 1002)  # a range without the gap is fine


def test_mixed_sizes_and_depths_name_the_file(tmp_path):
    p = _write_seq(tmp_path / "a", "s.%04d.png", [1, 2, 3], lambda n: (_gradient16(h=40 if n != 3 else 42), "uint16"))
    with pytest.raises(BadInput, match=r"s\.0003\.png: is 48x42.*mixed sizes"):
        seq.scan_sequence(p)
    q = _write_seq(tmp_path / "b", "s.%04d.png", [1, 2], lambda n: (_gradient16() if n == 1 else _gradient16().astype(np.uint8), "uint16"))
    with pytest.raises(BadInput, match=r"s\.0002\.png: is 48x40 8-bit.*mixed bit depths"):
        seq.scan_sequence(q)
    r = _write_seq(tmp_path / "c", "s.%04d.exr", [1, 2], lambda n: (np.zeros((40, 48, 3), np.float32), "half" if n == 1 else "float"))
    with pytest.raises(BadInput, match=r"s\.0002\.exr: is 48x40 32-bit float.*mixed bit depths"):
        seq.scan_sequence(r)


def test_exr_without_rgb_names_the_file(tmp_path):
    import OpenEXR

    (tmp_path / "s").mkdir()
    path = tmp_path / "s" / "d.0001.exr"
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"Z": np.zeros((20, 20), np.float32)}) as f:
        f.write(str(path))
    with pytest.raises(BadInput, match=r"d\.0001\.exr: EXR has no R, G and B channels \(it has: Z\)"):
        seq.scan_sequence(str(tmp_path / "s" / "d.%04d.exr"))
    with pytest.raises(BadInput, match="no R, G and B"):
        seq.read_frame(path)


def test_other_bad_sequences(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        seq.scan_sequence(str(tmp_path / "nope" / "s.%04d.exr"))
    with pytest.raises(BadInput, match="no files match"):
        seq.scan_sequence(str(tmp_path / "s.%04d.exr"))
    p = _write_seq(tmp_path, "s.%04d.png", [5, 6], lambda n: (_gradient16(), "uint16"))
    with pytest.raises(BadInput, match="frames 10-20 asked, the folder holds 5-6"):
        seq.scan_sequence(p, (10, 20))
    (tmp_path / "bad.0001.exr").write_bytes(b"not an exr at all")
    with pytest.raises(BadInput, match=r"bad\.0001\.exr: not an OpenEXR file"):
        seq.scan_sequence(str(tmp_path / "bad.%04d.exr"))
    with pytest.raises(BadInput, match="reads sequences of"):
        seq.scan_sequence(str(tmp_path / "s.%04d.jpg"))


@pytest.mark.parametrize("ext, pixel", [("png", "uint16"), ("tif", "uint16"), ("png", "uint8"), ("exr", "half")])
def test_reader_picture_is_the_display_referred_plate(tmp_path, ext, pixel):
    """The reader's uint8 picture (integer fast path for sRGB plates) equals display8 of the
    plate seen through the colour transform; every 16-bit code value maps as the float path does."""
    rng = np.random.default_rng(3)
    if pixel == "half":
        make = lambda n: (rng.random((40, 48, 3)).astype(np.float32) * 1.5, pixel)  # noqa: E731
    else:
        top = 65535 if pixel == "uint16" else 255
        make = lambda n: (rng.integers(0, top + 1, (40, 48, 3)).astype(np.uint16 if pixel == "uint16" else np.uint8), pixel)  # noqa: E731
    p = _write_seq(tmp_path, f"s.%04d.{ext}", [1, 2], make)
    r = seq.SequenceReader(seq.scan_sequence(p))
    for f in r.frames():
        assert f.rgb.dtype == np.uint8
        assert np.array_equal(f.rgb, seq.display8(r.view(r.read_plate(f.index))))
    x = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1).repeat(3, 2)
    q = _write_seq(tmp_path / "all", "a.%04d.png", [7], lambda n: (x, "uint16"))
    r = seq.SequenceReader(seq.scan_sequence(q))
    assert np.array_equal(r.picture(7), seq.display8(seq.to_unit(x)))
