"""Numbered image sequences (``shot.%04d.exr``) as VFX work uses them: read, write, colour.

* **Patterns** — printf style (``shot.%04d.exr``, ``shot.%d.png``) or hashes (``shot.####.exr``
  = ``%04d``). :func:`parse_pattern` returns ``None`` for a plain file name, so a caller can
  tell a sequence from a video. Frame numbers are the files' own (``1001`` …), never renumbered.
* **Formats** — OpenEXR (half or float RGB, read and written with the ASWF ``openexr``
  bindings, PIZ compression: lossless), PNG and TIFF at 8 or 16 bits (OpenCV reads both; PNG
  is written by OpenCV, TIFF by :func:`encode_tiff` here, uncompressed baseline, so both can
  carry text tags), DPX at 8, 10 or 16 bits (:mod:`facedub.media.dpx`, tags in its user data).
  Arrays: EXR → float32 H×W×3 (the file's values, scene-linear as a rule); PNG/TIFF/DPX →
  uint8/uint16 H×W×3 as stored (10-bit DPX codes widened to 16 bits by bit replication, taken
  back exactly on writing: pixel type ``uint10``). Writing takes the same kinds back, plus an
  optional fourth (alpha) channel.
* **Colour** — :class:`Colour` (OpenColorIO, the built-in ``cg-config-latest``, nothing to
  download) turns the plate's own space (``Linear Rec.709 (sRGB)`` for EXR, already
  ``sRGB Encoded Rec.709 (sRGB)`` for PNG/TIFF/DPX; a log DPX needs ``--plate-space``) into the display-referred picture detection
  and the model see, and back. Only what convert changes goes back through the inverse; every
  other pixel keeps the plate's own value (see :mod:`facedub.safety.sequence_marks`).
* **Checks** — :func:`scan_sequence` reads every header of the requested range before any
  work: a missing frame number, frames of mixed sizes or bit depths, an EXR without R, G and
  B channels are each a one-line :class:`BadInput` naming the file.

Written files are atomic (temporary name + rename) and byte-for-byte reproducible (no time
stamps in the headers), so a frame rendered twice hashes the same.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from facedub.errors import BadInput
from facedub.fileio import atomic_path

SequenceFormat = Literal["exr", "png", "tiff", "dpx"]
PixelType = Literal["uint8", "uint10", "uint16", "half", "float"]  # uint10: 10-bit DPX, held widened in uint16
FORMATS: dict[str, SequenceFormat] = {".exr": "exr", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".dpx": "dpx"}
FORMAT_NAMES = ".exr, .png, .tif, .tiff or .dpx"
# The display-referred space detection and the model see, and the plate's space by format.
CONFIG = "cg-config-latest"  # an OpenColorIO built-in config: needs no file
VIEW_SPACE = "sRGB Encoded Rec.709 (sRGB)"
LINEAR_SPACE = "Linear Rec.709 (sRGB)"
DEFAULT_PLATE_SPACE: dict[str, str] = {"exr": LINEAR_SPACE, "png": VIEW_SPACE, "tiff": VIEW_SPACE, "dpx": VIEW_SPACE}
MIN_SIDE = 16  # as media.reader: nothing smaller holds a face worth aligning

_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"#+")


# ----------------------------------------------------------------------------------------
# Patterns


@dataclass(frozen=True)
class Pattern:
    """A frame-number pattern: ``folder/prefix`` + the number padded to ``pad`` digits + ``suffix``."""

    text: str  # as the user wrote it
    folder: Path
    prefix: str  # file-name part before the number
    suffix: str  # file-name part after it (the extension included)
    pad: int  # digits the number is padded to with zeros (0: not padded)

    def name(self, n: int) -> str:
        return f"{self.prefix}{n:0{self.pad}d}{self.suffix}" if self.pad else f"{self.prefix}{n}{self.suffix}"

    def path(self, n: int) -> Path:
        return self.folder / self.name(n)

    @property
    def format(self) -> SequenceFormat | None:
        return FORMATS.get("." + self.suffix.rsplit(".", 1)[-1].lower()) if "." in self.suffix else None

    def number(self, name: str) -> int | None:
        """The frame number of a file name this pattern writes, else None."""
        if not (name.startswith(self.prefix) and name.endswith(self.suffix)):
            return None
        digits = name[len(self.prefix) : len(name) - len(self.suffix)]
        if not digits.isdigit() or not digits.isascii():
            return None
        n = int(digits)
        return n if self.name(n) == name else None

    def stem(self) -> str:
        """The pattern's name without the number (``shot.%04d.exr`` → ``shot``): for files beside it."""
        rest = self.suffix.rsplit(".", 1)[0] if "." in self.suffix else self.suffix
        s = (self.prefix + rest).strip("._- ")
        return s or "frames"

    def __str__(self) -> str:
        return self.text


def parse_pattern(text: str | os.PathLike[str]) -> Pattern | None:
    """A :class:`Pattern` when ``text``'s file name holds one ``%d``/``%0Nd`` or a run of ``#``; else None.

    BadInput for a name with two number fields, or with the field in a folder name.
    """
    s = os.fspath(text)
    p = Path(s)
    name = p.name
    fields = list(_PRINTF.finditer(name)) + list(_HASHES.finditer(name))
    if not fields:
        if _PRINTF.search(str(p.parent)) or "#" in str(p.parent):
            raise BadInput(f"{s}: the frame number must be in the file name, not in a folder name")
        return None
    if len(fields) > 1:
        raise BadInput(f"{s}: a sequence pattern holds one frame number (%04d or ####), this one has {len(fields)}")
    m = fields[0]
    if m.group(0).startswith("%"):
        pad = int(m.group(2)) if m.group(2) else 0
        if m.group(1) == "" and pad:
            raise BadInput(f"{s}: use %0{pad}d (zero-padded) or %d for the frame number")
    else:
        pad = len(m.group(0))
    if pad > 12:
        raise BadInput(f"{s}: a frame number of {pad} digits is too long")
    return Pattern(s, p.parent, name[: m.start()], name[m.end() :], pad)


def is_sequence(text: str | os.PathLike[str]) -> bool:
    try:
        return parse_pattern(text) is not None
    except BadInput:
        return True  # a malformed pattern is still meant as one: let the caller's parse report it


def parse_range(text: str) -> tuple[int, int]:
    """``"1001-1100"`` → (1001, 1100); ``"1001"`` → (1001, 1001). BadInput otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if not m:
        raise BadInput(f"--frames {text}: give a frame range FIRST-LAST (e.g. 1001-1100) or one frame number")
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) is not None else a
    if b < a:
        raise BadInput(f"--frames {text}: the last frame comes before the first")
    return a, b


def frames_on_disk(pattern: Pattern) -> list[int]:
    """The frame numbers of the files in the pattern's folder that match it, sorted."""
    if not pattern.folder.is_dir():
        where = pattern.folder if str(pattern.folder) else Path(".")
        raise BadInput(f"{pattern}: folder {where} does not exist")
    found = []
    with os.scandir(pattern.folder) as it:
        for e in it:
            n = pattern.number(e.name)
            if n is not None:
                found.append(n)
    return sorted(found)


# ----------------------------------------------------------------------------------------
# Headers: size and pixel type without decoding the pixels


@dataclass(frozen=True)
class FrameInfo:
    width: int
    height: int
    pixel: PixelType  # what the file stores per channel
    alpha: bool  # a fourth channel (ignored on reading: the plate's colour is what is swapped)

    def describe(self) -> str:
        depth = {"uint8": "8-bit", "uint10": "10-bit", "uint16": "16-bit", "half": "half float", "float": "32-bit float"}[self.pixel]
        return f"{self.width}x{self.height} {depth}"


def _exr_rgb_names(channels: list[str]) -> tuple[str, str, str] | None:
    names = set(channels)
    if {"R", "G", "B"} <= names:
        return "R", "G", "B"
    return None


_EXR_MAGIC = 20000630
_EXR_PIXEL = {0: "uint", 1: "half", 2: "float"}


def exr_header(path: Path) -> dict[str, object]:
    """The first part's header attributes the checks need, parsed from the file's first bytes
    (no pixels read): ``channels`` {name: "half"/"float"/"uint"}, ``dataWindow`` (x0, y0, x1,
    y1), ``type`` and every string attribute. BadInput when it is no EXR."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 16)
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    if len(data) < 8 or struct.unpack("<i", data[:4])[0] != _EXR_MAGIC:
        raise BadInput(f"{path}: not an OpenEXR file")
    pos, out = 8, {}
    try:
        while data[pos] != 0:
            name_end = data.index(b"\x00", pos)
            type_end = data.index(b"\x00", name_end + 1)
            name = data[pos:name_end].decode("latin-1")
            kind = data[name_end + 1 : type_end].decode("latin-1")
            (size,) = struct.unpack("<i", data[type_end + 1 : type_end + 5])
            value = data[type_end + 5 : type_end + 5 + size]
            if len(value) < size:
                raise ValueError("header runs past the first 64 KB")
            pos = type_end + 5 + size
            if kind == "chlist":
                chans, q = {}, 0
                while value[q] != 0:
                    e = value.index(b"\x00", q)
                    (ptype,) = struct.unpack("<i", value[e + 1 : e + 5])
                    chans[value[q:e].decode("latin-1")] = _EXR_PIXEL.get(ptype, "?")
                    q = e + 1 + 16
                out["channels"] = chans
            elif kind == "box2i" and name == "dataWindow":
                out["dataWindow"] = struct.unpack("<iiii", value)
            elif kind == "string":
                out[name] = value.decode("utf-8", "replace")
    except (IndexError, ValueError, struct.error) as e:
        raise BadInput(f"{path}: damaged OpenEXR header ({_first_line(e)})") from None
    if "channels" not in out or "dataWindow" not in out:
        raise BadInput(f"{path}: OpenEXR header without channels or data window")
    return out


def _exr_info(path: Path) -> FrameInfo:
    h = exr_header(path)
    chans: dict[str, str] = h["channels"]  # type: ignore[assignment]
    if str(h.get("type", "")).startswith("deep"):
        raise BadInput(f"{path}: deep EXR images are not supported")
    if _exr_rgb_names(list(chans)) is None:
        have = ", ".join(sorted(chans)) or "none"
        raise BadInput(f"{path}: EXR has no R, G and B channels (it has: {have}); facedub swaps colour plates")
    types = {chans[c] for c in "RGB"}
    if types == {"half"}:
        pixel: PixelType = "half"
    elif types == {"float"}:
        pixel = "float"
    else:
        raise BadInput(f"{path}: EXR R, G, B channels are {'/'.join(sorted(types))}; facedub reads half or float colour channels")
    x0, y0, x1, y1 = h["dataWindow"]  # type: ignore[misc]
    return FrameInfo(x1 - x0 + 1, y1 - y0 + 1, pixel, "A" in chans)


_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_info(path: Path) -> FrameInfo:
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    if len(head) < 33 or head[:8] != _PNG_SIG or head[12:16] != b"IHDR":
        raise BadInput(f"{path}: not a PNG file")
    w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
    if depth not in (8, 16) or ctype == 3:
        raise BadInput(f"{path}: PNG of {depth}-bit {'palette' if ctype == 3 else 'samples'}; facedub reads 8- or 16-bit RGB or grey")
    return FrameInfo(w, h, "uint16" if depth == 16 else "uint8", ctype in (4, 6))


def _tiff_info(path: Path) -> FrameInfo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            bits = im.tag_v2.get(258, (8,))
            spp = int(im.tag_v2.get(277, 1))
            fmt = im.tag_v2.get(339, 1)
    except UnidentifiedImageError:
        raise BadInput(f"{path}: not a readable TIFF file") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise BadInput(f"{path}: cannot read TIFF ({_first_line(e)})") from None
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    fmt = fmt[0] if isinstance(fmt, (tuple, list)) else fmt
    if len(set(bits)) != 1 or bits[0] not in (8, 16) or fmt not in (1, None):
        raise BadInput(f"{path}: TIFF of {'/'.join(map(str, bits))}-bit samples; facedub reads 8- or 16-bit integer RGB or grey")
    return FrameInfo(w, h, "uint16" if bits[0] == 16 else "uint8", spp in (2, 4))


def _dpx_info(path: Path) -> FrameInfo:
    from facedub.media import dpx

    h = dpx.read_header(path)
    pixel: PixelType = {8: "uint8", 10: "uint10", 16: "uint16"}[h.bits]  # type: ignore[assignment]
    return FrameInfo(h.width, h.height, pixel, h.channels == 4)


def frame_info(path: Path) -> FrameInfo:
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    kind = FORMATS.get(path.suffix.lower())
    if kind == "exr":
        info = _exr_info(path)
    elif kind == "png":
        info = _png_info(path)
    elif kind == "tiff":
        info = _tiff_info(path)
    elif kind == "dpx":
        info = _dpx_info(path)
    else:
        raise BadInput(f"{path}: facedub reads sequences of {FORMAT_NAMES} files")
    if min(info.width, info.height) < MIN_SIDE:
        raise BadInput(f"{path}: image is only {info.width}x{info.height} px, too small to hold a face")
    return info


# ----------------------------------------------------------------------------------------
# A checked sequence


@dataclass(frozen=True)
class Sequence:
    pattern: Pattern
    frames: tuple[int, ...]  # the frame numbers to read, in order, all present
    info: FrameInfo  # every frame's size and pixel type (checked to agree)
    first_on_disk: int  # the sequence as it lies on disk (for messages and warm-up bounds)
    last_on_disk: int

    @property
    def format(self) -> SequenceFormat:
        fmt = self.pattern.format
        assert fmt is not None
        return fmt

    def path(self, n: int) -> Path:
        return self.pattern.path(n)


def scan_sequence(text: str | os.PathLike[str] | Pattern, frames: tuple[int, int] | None = None) -> Sequence:
    """Check the sequence ``text`` (a pattern) over ``frames`` (inclusive; default: all on disk).

    Every header in the range is read: BadInput names the first missing file, the first file
    whose size or bit depth differs from the first frame's, or an EXR without colour channels.
    """
    pattern = text if isinstance(text, Pattern) else parse_pattern(text)
    if pattern is None:
        raise BadInput(f"{text}: not a sequence pattern (put %04d or #### where the frame number goes)")
    if pattern.format is None:
        raise BadInput(f"{pattern}: facedub reads sequences of {FORMAT_NAMES} files")
    on_disk = frames_on_disk(pattern)
    if not on_disk:
        raise BadInput(f"{pattern}: no files match in {pattern.folder if str(pattern.folder) else '.'}")
    lo, hi = on_disk[0], on_disk[-1]
    a, b = frames if frames is not None else (lo, hi)
    if a > hi or b < lo:
        raise BadInput(f"{pattern}: frames {a}-{b} asked, the folder holds {lo}-{hi}")
    present = set(on_disk)
    wanted = range(a, b + 1)
    for n in wanted:
        if n not in present:
            raise BadInput(f"{pattern.path(n)}: missing (frame {n} of {a}-{b}; the folder holds {len(on_disk)} frames of {lo}-{hi})")
    first = frame_info(pattern.path(a))
    for n in wanted[1:]:
        info = frame_info(pattern.path(n))
        if (info.width, info.height) != (first.width, first.height):
            raise BadInput(f"{pattern.path(n)}: is {info.width}x{info.height}, but frame {a} is {first.width}x{first.height} (mixed sizes)")
        if info.pixel != first.pixel:
            raise BadInput(f"{pattern.path(n)}: is {info.describe()}, but frame {a} is {first.describe()} (mixed bit depths)")
    return Sequence(pattern, tuple(wanted), first, lo, hi)


# ----------------------------------------------------------------------------------------
# Reading pixels


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def read_exr(path: Path) -> tuple[np.ndarray, dict]:
    """(float32 H×W×3 RGB, header) of an EXR file."""
    import OpenEXR

    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            header = dict(f.header())
            ch = f.channels()
            names = _exr_rgb_names(list(ch))
            if names is None:
                raise BadInput(f"{path}: EXR has no R, G and B channels (it has: {', '.join(sorted(ch)) or 'none'})")
            rgb = np.stack([np.asarray(ch[c].pixels, dtype=np.float32) for c in names], axis=-1)
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{path}: cannot read OpenEXR file ({_first_line(e)})") from None
    return rgb, header


def _quiet_libtiff_warnings(cv2: object) -> None:
    """OpenCV logs libtiff's warnings to stderr ("Unknown field with tag 52545": the C2PA tag of a
    signed frame); facedub never prints, so its log level is raised to errors once."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None and logging.getLogLevel() > logging.LOG_LEVEL_ERROR:
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)


def read_frame(path: Path, info: FrameInfo | None = None) -> np.ndarray:
    """The stored RGB of one frame: float32 for EXR, uint8/uint16 for PNG, TIFF and DPX (H×W×3).

    ``info``: what the sequence's first frame was; a frame that differs is a BadInput.
    """
    kind = FORMATS.get(path.suffix.lower())
    if kind == "exr":
        rgb, _ = read_exr(path)
    elif kind == "dpx":
        from facedub.media import dpx

        rgb, _ = dpx.decode(path)
    else:
        import cv2

        if kind == "tiff":
            _quiet_libtiff_warnings(cv2)

        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise BadInput(f"{path}: cannot read ({e.strerror})") from None
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise BadInput(f"{path}: not a readable {kind or 'image'} file")
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        elif img.shape[2] == 2:  # grey + alpha
            img = np.repeat(img[..., :1], 3, axis=2)
        else:
            img = img[..., 2::-1] if img.shape[2] >= 3 else img  # BGR(A) → RGB
        rgb = np.ascontiguousarray(img[..., :3])
        if rgb.dtype not in (np.uint8, np.uint16):
            raise BadInput(f"{path}: {rgb.dtype} samples; facedub reads 8- or 16-bit PNG/TIFF")
    if info is not None:
        h, w = rgb.shape[:2]
        if (w, h) != (info.width, info.height):
            raise BadInput(f"{path}: is {w}x{h}, the sequence is {info.width}x{info.height} (mixed sizes)")
    return rgb


def to_unit(stored: np.ndarray) -> np.ndarray:
    """Stored samples as float32 code values: 8/16-bit scaled to 0..1, float kept as it is."""
    if stored.dtype == np.uint8:
        return stored.astype(np.float32) / np.float32(255.0)
    if stored.dtype == np.uint16:
        return stored.astype(np.float32) / np.float32(65535.0)
    return np.asarray(stored, dtype=np.float32)


def from_unit(values: np.ndarray, pixel: PixelType) -> np.ndarray:
    """float code values back to the stored type (rounded and clipped for integers)."""
    if pixel == "uint8":
        return np.clip(np.rint(values.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if pixel == "uint16":
        return np.clip(np.rint(values.astype(np.float64) * 65535.0), 0, 65535).astype(np.uint16)
    if pixel == "uint10":  # 10-bit codes, held widened in uint16 as read_frame gives them
        c = np.clip(np.rint(values.astype(np.float64) * 1023.0), 0, 1023).astype(np.uint16)
        return (c << 6) | (c >> 4)
    if pixel == "half":
        return np.asarray(values, dtype=np.float16)
    return np.asarray(values, dtype=np.float32)


# ----------------------------------------------------------------------------------------
# Colour


@dataclass(frozen=True)
class ColourConfig:
    plate_space: str | None = None  # the plate's OCIO colour space; None = by format (EXR: Linear Rec.709, PNG/TIFF: sRGB encoded)
    view_space: str = VIEW_SPACE  # the display-referred space detection and the model see
    config: str = CONFIG  # an OpenColorIO built-in config name, or a .ocio file


class Colour:
    """The plate's space ↔ the display-referred space, as two OpenColorIO CPU processors.

    ``identity`` when both are the same space (8/16-bit sRGB plates): no processor runs and
    values pass through bit for bit.
    """

    def __init__(self, config: ColourConfig, fmt: SequenceFormat) -> None:
        self.plate_space = config.plate_space or DEFAULT_PLATE_SPACE[fmt]
        self.view_space = config.view_space
        self.config_name = config.config
        self.identity = self.plate_space == self.view_space
        self._fwd = self._inv = None
        if not self.identity:
            import PyOpenColorIO as ocio

            try:
                cfg = ocio.Config.CreateFromFile(config.config) if config.config.endswith(".ocio") else ocio.Config.CreateFromBuiltinConfig(config.config)
            except Exception as e:  # noqa: BLE001
                raise BadInput(f"{config.config}: not an OpenColorIO config ({_first_line(e)})") from None
            names = {c.getName() for c in cfg.getColorSpaces()}
            for space in (self.plate_space, self.view_space):
                if cfg.getColorSpace(space) is None:
                    raise BadInput(f"colour space {space!r}: not in the OpenColorIO config {config.config} (it has e.g. {', '.join(sorted(names)[:6])} …)")
            self._fwd = cfg.getProcessor(self.plate_space, self.view_space).getDefaultCPUProcessor()
            self._inv = cfg.getProcessor(self.view_space, self.plate_space).getDefaultCPUProcessor()

    def to_view(self, plate: np.ndarray) -> np.ndarray:
        """float32 plate values → display-referred float32 (a new array)."""
        out = np.array(plate, dtype=np.float32, copy=True, order="C")
        if self._fwd is not None:
            self._fwd.applyRGB(out)
        return out

    def from_view(self, view: np.ndarray) -> np.ndarray:
        """Display-referred float32 → the plate's space (a new array)."""
        out = np.array(view, dtype=np.float32, copy=True, order="C")
        if self._inv is not None:
            self._inv.applyRGB(out)
        return out

    def describe(self) -> dict[str, str]:
        return {"plate_space": self.plate_space, "view_space": self.view_space, "ocio_config": self.config_name}


def display8(view: np.ndarray) -> np.ndarray:
    """Display-referred float → the uint8 RGB picture detection and the model see."""
    return np.clip(np.rint(np.asarray(view, np.float32) * np.float32(255.0)), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# Writing


def write_exr(path: Path, pixels: np.ndarray, pixel: PixelType, attrs: dict[str, str] | None = None) -> None:
    """RGB or RGBA float pixels as an EXR (half or float, PIZ), with string ``attrs`` in the header."""
    import OpenEXR

    if pixel not in ("half", "float"):
        raise ValueError(f"EXR pixels are half or float, not {pixel}")
    dt = np.float16 if pixel == "half" else np.float32
    names = "RGBA"[: pixels.shape[2]]
    channels = {c: np.ascontiguousarray(pixels[..., k], dtype=dt) for k, c in enumerate(names)}
    header = {"compression": OpenEXR.PIZ_COMPRESSION, "type": OpenEXR.scanlineimage}  # lossless; for grainy plates the fastest to write of the lossless kinds (bench_sequence)
    header.update({k: str(v) for k, v in (attrs or {}).items()})
    with atomic_path(path, ".exr") as tmp:
        try:
            with OpenEXR.File(header, channels) as f:
                f.write(str(tmp))
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"{path}: cannot write OpenEXR file ({_first_line(e)})") from None


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """8/16-bit RGB(A) or grey as PNG bytes (OpenCV's encoder) with ``tEXt`` chunks after IHDR."""
    import cv2

    img = pixels if pixels.ndim == 2 else (pixels[..., ::-1] if pixels.shape[2] == 3 else pixels[..., [2, 1, 0, 3]])
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("PNG encoding failed")
    data = buf.tobytes()
    if not text:
        return data
    chunks = b"".join(_png_chunk(b"tEXt", k.encode("latin-1") + b"\x00" + v.encode("latin-1", "replace")) for k, v in text.items())
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + chunks + data[ihdr_end:]


def png_text(path: Path) -> dict[str, str]:
    """The ``tEXt`` chunks of a PNG file ({} when none or unreadable)."""
    out: dict[str, str] = {}
    try:
        with open(path, "rb") as f:
            if f.read(8) != _PNG_SIG:
                return out
            while True:
                head = f.read(8)
                if len(head) < 8:
                    break
                n, kind = struct.unpack(">I4s", head)
                if kind == b"IDAT" or kind == b"IEND":
                    break
                body = f.read(n)
                f.read(4)
                if kind == b"tEXt" and b"\x00" in body:
                    k, v = body.split(b"\x00", 1)
                    out[k.decode("latin-1")] = v.decode("latin-1")
    except OSError:
        return {}
    return out


_TIFF_DESCRIPTION = 270
_TIFF_SOFTWARE = 305


def encode_tiff(pixels: np.ndarray, description: str = "", software: str = "") -> bytes:
    """An uncompressed little-endian baseline TIFF of 8/16-bit RGB or RGBA (unassociated alpha)
    in one strip, with ImageDescription and Software tags: deterministic bytes."""
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"TIFF writer takes H×W×3/4 uint8/uint16, got {pixels.shape} {pixels.dtype}")
    h, w, spp = pixels.shape
    bits = 8 * pixels.dtype.itemsize
    strip = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)).tobytes()
    desc = description.encode("utf-8") + b"\x00"
    soft = software.encode("utf-8") + b"\x00"
    n_entries = 12 + (1 if spp == 4 else 0)
    ifd_size = 2 + 12 * n_entries + 4
    extra_at = 8 + ifd_size
    blobs = b""

    def place(data: bytes) -> int:
        nonlocal blobs
        off = extra_at + len(blobs)
        blobs += data + (b"\x00" if len(data) % 2 else b"")
        return off

    bits_off = place(struct.pack("<" + "H" * spp, *([bits] * spp)))
    desc_off = place(desc) if len(desc) > 4 else None
    soft_off = place(soft) if len(soft) > 4 else None
    strip_off = extra_at + len(blobs)

    def entry(tag: int, typ: int, count: int, value: int | bytes) -> bytes:
        if isinstance(value, bytes):
            return struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
        if typ == 3 and count == 1:
            return struct.pack("<HHIHH", tag, typ, count, value, 0)
        return struct.pack("<HHII", tag, typ, count, value)

    entries = [
        entry(256, 4, 1, w),
        entry(257, 4, 1, h),
        entry(258, 3, spp, bits_off),
        entry(259, 3, 1, 1),  # no compression
        entry(262, 3, 1, 2),  # RGB
        entry(_TIFF_DESCRIPTION, 2, len(desc), desc_off if desc_off is not None else desc),
        entry(273, 4, 1, strip_off),
        entry(277, 3, 1, spp),
        entry(278, 4, 1, h),
        entry(279, 4, 1, len(strip)),
        entry(284, 3, 1, 1),  # chunky
        entry(_TIFF_SOFTWARE, 2, len(soft), soft_off if soft_off is not None else soft),
    ]
    if spp == 4:
        entries.append(entry(338, 3, 1, 2))  # extra sample: unassociated alpha
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + blobs + strip


def tiff_text(path: Path) -> dict[str, str]:
    """ImageDescription and Software of a TIFF ({} when unreadable)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            tags = im.tag_v2
            out = {}
            for tag, key in ((_TIFF_DESCRIPTION, "description"), (_TIFF_SOFTWARE, "software")):
                v = tags.get(tag)
                if isinstance(v, str):
                    out[key] = v
            return out
    except Exception:  # noqa: BLE001 - unreadable: no tags
        return {}


def write_frame(path: Path, pixels: np.ndarray, pixel: PixelType, tags: dict[str, str] | None = None) -> None:
    """Write one frame atomically in the format of ``path``'s extension.

    ``pixels``: float code values (H×W×3 or ×4) for EXR, or already uint8/uint16 for PNG/TIFF/DPX
    (``pixel`` "uint10": a 10-bit DPX, widened values as :func:`from_unit` gives them).
    ``tags``: facedub's text tags (EXR header attributes, PNG tEXt chunks, TIFF description,
    DPX user data).
    """
    kind = FORMATS.get(path.suffix.lower())
    tags = dict(tags or {})
    if kind == "exr":
        write_exr(path, pixels, pixel if pixel in ("half", "float") else "half", tags)
        return
    if pixels.dtype not in (np.uint8, np.uint16):
        pixels = from_unit(pixels, pixel if pixel in ("uint8", "uint10", "uint16") else "uint16")
    if kind == "png":
        data = encode_png(pixels, tags)
    elif kind == "tiff":
        import json

        data = encode_tiff(pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, 2), json.dumps(tags, sort_keys=True), tags.get("software", "facedub"))
    elif kind == "dpx":
        from facedub.media import dpx

        bits = {"uint8": 8, "uint10": 10}.get(pixel, 16 if pixels.dtype == np.uint16 else 8)
        data = dpx.encode(pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, 2), bits, tags)
    else:
        raise BadInput(f"{path}: facedub writes sequences of {FORMAT_NAMES} files")
    with atomic_path(path, path.suffix) as tmp:
        tmp.write_bytes(data)


def read_text_tags(path: Path) -> dict[str, str]:
    """The text tags a sequence frame carries: EXR string attributes, PNG tEXt, TIFF description, DPX user data."""
    kind = FORMATS.get(path.suffix.lower())
    if kind == "exr":
        try:
            return {k: v for k, v in exr_header(path).items() if isinstance(v, str)}
        except BadInput:
            return {}
    if kind == "png":
        return png_text(path)
    if kind == "dpx":
        from facedub.media import dpx

        try:
            return dict(dpx.read_header(path).user)
        except BadInput:
            return {}
    if kind == "tiff":
        import json

        t = tiff_text(path)
        try:
            d = json.loads(t.get("description", ""))
            return {str(k): str(v) for k, v in d.items()} if isinstance(d, dict) else t
        except ValueError:
            return t
    return {}


# ----------------------------------------------------------------------------------------
# A reader the convert pipeline can iterate


@dataclass(frozen=True)
class SeqFrame:
    index: int  # the frame number (the file's own)
    time: float  # seconds from the sequence's first frame on disk, at ``fps``
    rgb: np.ndarray  # H×W×3 uint8, display-referred: what detection and the model see


class SequenceReader:
    """Iterates a checked :class:`Sequence` as display-referred uint8 frames (``kind`` "sequence").

    ``read_plate(n)`` gives a frame's own float values again (for the output, which keeps
    them wherever nothing was pasted).
    """

    kind = "sequence"
    has_audio = False

    def __init__(self, seq: Sequence, colour: ColourConfig | None = None, fps: float = 24.0) -> None:
        self.seq = seq
        self.colour = Colour(colour or ColourConfig(), seq.format)
        self.fps = float(fps)
        self.width, self.height = seq.info.width, seq.info.height
        self.frame_count = len(seq.frames)
        self.path = seq.pattern.path(seq.frames[0])
        self.problems: list[str] = []
        self.time_origin = seq.first_on_disk  # the frame shown at 0 s

    def notes(self) -> list[str]:
        return []

    def read_plate(self, n: int) -> np.ndarray:
        """float32 code values of frame ``n`` in the plate's own space (H×W×3)."""
        return to_unit(read_frame(self.seq.path(n), self.seq.info))

    def view(self, plate: np.ndarray) -> np.ndarray:
        return self.colour.to_view(plate)

    def frames(self, start: int = 0, every: int = 1, limit: int | None = None, threads: int | None = None) -> Iterator[SeqFrame]:
        todo = self.seq.frames[start::every]
        if limit is not None:
            todo = todo[:limit]
        for n in todo:
            yield SeqFrame(n, (n - self.time_origin) / self.fps, self.picture(n))

    def picture(self, n: int) -> np.ndarray:
        """Frame ``n`` as detection and the model see it: display-referred uint8 RGB."""
        stored = read_frame(self.seq.path(n), self.seq.info)
        if self.colour.identity and stored.dtype == np.uint16:
            # display8(to_unit(x)) in integers: rint(x / 257) (x / 257 is never a tie, 257 being odd)
            return ((stored.astype(np.uint32) + 128) // 257).astype(np.uint8)
        if self.colour.identity and stored.dtype == np.uint8:
            return stored
        return display8(self.view(to_unit(stored)))

    def __iter__(self) -> Iterator[SeqFrame]:
        return self.frames()
