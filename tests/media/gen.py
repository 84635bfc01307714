"""Tiny videos as cameras and phones make them, built with PyAV for the media tests.

Every picture has a white block in its top-left corner and a red one in its top-right corner
(so orientation can be checked) over a gradient that moves with the frame number. Nothing
here is shipped; the files live in the test's tmp_path.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


def picture(i: float, w: int, h: int) -> np.ndarray:
    """Frame ``i`` (fractional for fields) of the test pattern: markers, moving gradient, moving bar."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 3 + i * 6) % 256, (yy * 4) % 256, np.full_like(xx, 90)], -1).astype(np.uint8)
    bx, by = max(2, w // 6), max(2, h // 6)
    img[:by, :bx] = 255  # white: top-left
    img[:by, w - bx :] = (230, 20, 20)  # red: top-right
    x = int(round(w * 0.2 + i * 4)) % max(1, w - 4)
    img[by + 2 :, x : x + 3] = (10, 10, 10)  # a dark bar moving right 4 px a frame (2 px a field)
    return img


def markers(rgb: np.ndarray) -> str:
    """Where the white and red markers are: 'upright', or the corners they ended up in."""
    h, w = rgb.shape[:2]
    corners = {"tl": rgb[: h // 10 + 1, : w // 10 + 1], "tr": rgb[: h // 10 + 1, -(w // 10 + 1) :], "bl": rgb[-(h // 10 + 1) :, : w // 10 + 1], "br": rgb[-(h // 10 + 1) :, -(w // 10 + 1) :]}
    white = max(corners, key=lambda k: float(corners[k].astype(int).sum(axis=2).mean()))
    red = max(corners, key=lambda k: float((corners[k][..., 0].astype(int) - corners[k][..., 1]).mean()))
    return "upright" if (white, red) == ("tl", "tr") else f"white {white}, red {red}"


def combing(rgb: np.ndarray) -> float:
    """Mean |row − average of its neighbours| in grey: high on an interlaced moving edge."""
    g = rgb.astype(np.float64).mean(axis=2)
    return float(np.abs(g[1:-1] - 0.5 * (g[:-2] + g[2:])).mean())


def write_video(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (96, 64),
    fps: int = 25,
    *,
    pix_fmt: str = "yuv420p",
    times: Sequence[float] | None = None,
    rotation: int | None = None,
    hflip: bool = False,
    interlaced: bool = False,
    audio: Sequence[tuple[str, float]] = (),
    subtitles: Sequence[tuple[float, float, str]] = (),
    gop: int | None = None,
    noise: bool = False,
    pictures: Sequence[np.ndarray] | None = None,
) -> Path:
    """An H.264 file of ``frames`` test pictures at ``size`` (width, height).

    ``times``: each frame's timestamp in seconds (variable frame rate); ``rotation``: a
    display matrix (counter-clockwise degrees, as PyAV's ``set_display_rotation``), the
    picture stored turned the other way so that players show it upright at ``size``;
    ``interlaced``: each picture woven from two fields half a frame apart, coded interlaced
    top field first; ``audio``: one AAC stream per (language, tone Hz); ``subtitles``:
    (start s, end s, text) cues in one subtitle stream (mov_text in MP4/MOV, SubRip in MKV);
    ``noise``: random texture so that every packet is large (for corrupting one);
    ``pictures``: frames to use (as shown, size × frames) instead of the test pattern.
    """
    import av

    turns = round((rotation or 0) / 90) % 4  # quarter turns players apply (counter-clockwise)
    w, h = size if turns % 2 == 0 else size[::-1]  # stored size; ``size`` is what players show
    fmt = FORMATS[path.suffix.lower()]
    duration = (times[-1] + 1.0 / fps) if times is not None else frames / fps
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if noise else None
    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        options = {}
        if interlaced:
            options["x264-params"] = "interlaced=1:tff=1"
        if gop:
            options.update({"g": str(gop), "bf": "0"})
        vs.codec_context.options = options
        tb = Fraction(1, 1000) if times is not None else Fraction(1, fps)
        if times is not None:
            vs.codec_context.time_base = tb
            vs.time_base = tb
        if rotation is not None or hflip:
            vs.set_display_rotation(rotation or 0, hflip=hflip)
        a_streams = []
        for lang, _ in audio:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
            a.metadata["language"] = lang
            a_streams.append(a)
        s_stream = None
        if subtitles:
            s_stream = c.add_stream("mov_text" if fmt in ("mp4", "mov") else "subrip")
            s_stream.codec_context.subtitle_header = b"[Script Info]\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\n\r\n[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\r\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\r\n\r\n[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\r\n"
            s_stream.metadata["language"] = "eng"
        for i in range(frames):
            if interlaced:  # top field (even rows) at i, bottom field half a frame later
                img = picture(i, w, h)
                img[1::2] = picture(i + 0.5, w, h)[1::2]
            elif pictures is not None:
                img = np.ascontiguousarray(pictures[i])
            else:
                img = picture(i, *size)
            if turns and not hflip:  # store it turned back, as a phone held upright does
                img = np.ascontiguousarray(np.rot90(img, -turns))
            if texture is not None:
                img = (img.astype(np.int32) // 2 + np.roll(texture, 3 * i, axis=1) // 2).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pix_fmt != "yuv420p":
                vf = vf.reformat(format=pix_fmt)
            if times is not None:
                vf.pts = int(round(times[i] / tb))
                vf.time_base = tb
            for p in vs.encode(vf):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        for (lang, freq), a in zip(audio, a_streams):
            n = int(16000 * duration)
            t = np.arange(n) / 16000
            samples = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]
            for k in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k : k + 1024]), format="fltp", layout="mono")
                af.sample_rate = 16000
                af.pts = k
                af.time_base = Fraction(1, 16000)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        for start, end, text in subtitles:
            data = text.encode()
            payload = len(data).to_bytes(2, "big") + data if fmt in ("mp4", "mov") else data
            pkt = av.Packet(payload)
            pkt.stream = s_stream
            pkt.time_base = Fraction(1, 1000)
            pkt.pts = pkt.dts = int(start * 1000)
            pkt.duration = int((end - start) * 1000)
            c.mux(pkt)
    return path


def video_packets(path: Path) -> list[tuple[int | None, int, int]]:
    """(pts, byte position, size) of the video packets, in file order."""
    import av

    with av.open(str(path)) as c:
        return [(p.pts, int(p.pos), int(p.size)) for p in c.demux(video=0) if p.size]


def corrupt_packet(src: Path, dst: Path, number: int) -> float:
    """Copy ``src`` to ``dst`` with the payload of video packet ``number`` (file order)
    overwritten by random bytes (its length prefix kept). Returns that packet's time (s)."""
    import av

    pts, pos, size = video_packets(src)[number]
    data = bytearray(src.read_bytes())
    junk = np.random.default_rng(number).integers(0, 256, size - 8, dtype=np.uint8).tobytes()
    data[pos + 8 : pos + size] = junk
    dst.write_bytes(bytes(data))
    with av.open(str(src)) as c:
        return float(pts * c.streams.video[0].time_base)


def stream_summary(path: Path) -> list[tuple[str, str, str | None]]:
    """(type, codec, language) of each stream."""
    import av

    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context is not None else "", s.metadata.get("language")) for s in c.streams]


def packets(path: Path, kind: str) -> list[tuple[float, bytes]]:
    """(time s, payload) of every packet of each stream of ``kind`` ('audio', 'subtitle'), by stream."""
    import av

    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        out: dict[int, list] = {s.index: [] for s in streams}
        if streams:
            for p in c.demux(*streams):
                if p.size and p.pts is not None:
                    out[p.stream.index].append((round(float(p.pts * p.time_base), 4), bytes(p)))
    return list(out.values())


def frame_times(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as c:
        return [round(float(f.time), 4) for f in c.decode(video=0)]
