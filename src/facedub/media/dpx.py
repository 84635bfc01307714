"""DPX (SMPTE 268M) frames: a small reader and writer of the cases VFX shots use.

Read: RGB or RGBA image element 0 at 8 bits, 10 bits (filled to 32-bit words, method A or
B: ``packing`` 1 or 2) or 16 bits, big- or little-endian, uncompressed. Anything else (luma,
YCbCr, 12 bits, RLE, several elements) is a one-line refusal naming the file.

Write: big-endian, uncompressed, RGB (descriptor 50) or RGBA (51); 8 or 16 bits (lines padded
to a 32-bit word, as FFmpeg writes them), 10 bits RGB (one pixel per 32-bit word, method A, the layout FFmpeg, Nuke and
Resolve write) or 16 bits. The header carries no time stamp, so a frame written twice hashes
the same. Text tags go in the user-data section (user id ``facedub``, a JSON object) and the
creator field.

Arrays: 8-bit files give uint8; 10- and 16-bit files give uint16, 10-bit codes widened by bit
replication (``c << 6 | c >> 4``: 0 → 0, 1023 → 65535), which :func:`encode` takes back
exactly (``rint(v · 1023 / 65535)`` of a widened code is the code).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facedub.errors import BadInput

MAGIC_BE = b"SDPX"
MAGIC_LE = b"XPDS"
HEADER_SIZE = 2048  # file (768) + image (640) + orientation (256) + film (256) + television (128)
USER_ID = "facedub"
_DESCRIPTORS = {50: 3, 51: 4}  # RGB, RGBA


@dataclass(frozen=True)
class DpxHeader:
    width: int
    height: int
    bits: int  # 8, 10 or 16
    channels: int  # 3 or 4
    packing: int
    endian: str  # ">" or "<"
    data_offset: int
    creator: str
    user: dict[str, str]


def _cstr(b: bytes) -> str:
    return b.split(b"\x00", 1)[0].decode("latin-1", "replace").strip()


def read_header(path: Path, data: bytes | None = None) -> DpxHeader:
    """The header of a DPX file (only the first 2 KB and the user data are read)."""
    try:
        if data is None:
            with open(path, "rb") as f:
                data = f.read(HEADER_SIZE)
                if len(data) >= 36 and data[:4] in (MAGIC_BE, MAGIC_LE):
                    e = ">" if data[:4] == MAGIC_BE else "<"
                    (user_size,) = struct.unpack(e + "I", data[32:36])
                    if 0 < user_size < (1 << 24):
                        data += f.read(user_size)
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    if len(data) < HEADER_SIZE or data[:4] not in (MAGIC_BE, MAGIC_LE):
        raise BadInput(f"{path}: not a DPX file")
    e = ">" if data[:4] == MAGIC_BE else "<"
    offset, = struct.unpack(e + "I", data[4:8])
    user_size, = struct.unpack(e + "I", data[32:36])
    elements, width, height = struct.unpack(e + "HII", data[770:780])
    descriptor, _transfer, _colorimetric, bits = data[800], data[801], data[802], data[803]
    packing, encoding, elem_offset = struct.unpack(e + "HHI", data[804:812])
    if elements != 1:
        raise BadInput(f"{path}: DPX with {elements} image elements; facedub reads one RGB or RGBA element")
    if descriptor not in _DESCRIPTORS:
        raise BadInput(f"{path}: DPX descriptor {descriptor} (not RGB or RGBA); facedub reads RGB(A) DPX")
    if encoding != 0:
        raise BadInput(f"{path}: run-length encoded DPX; facedub reads uncompressed DPX")
    if bits not in (8, 10, 16) or (bits == 10 and packing not in (1, 2)):
        how = f"{bits}-bit" + (f" packing {packing}" if bits == 10 else "")
        raise BadInput(f"{path}: DPX of {how} samples; facedub reads 8-, 10- (filled, method A or B) or 16-bit DPX")
    user: dict[str, str] = {}
    if user_size > 32 and len(data) >= HEADER_SIZE + user_size and _cstr(data[HEADER_SIZE : HEADER_SIZE + 32]) == USER_ID:
        try:
            d = json.loads(data[HEADER_SIZE + 32 : HEADER_SIZE + user_size].rstrip(b"\x00").decode("utf-8"))
            if isinstance(d, dict):
                user = {str(k): str(v) for k, v in d.items()}
        except (UnicodeDecodeError, ValueError):
            pass
    start = elem_offset if elem_offset else offset
    return DpxHeader(width, height, bits, _DESCRIPTORS[descriptor], packing, e, start, _cstr(data[160:260]), user)


def _row_bytes(width: int, channels: int, bits: int, aligned: bool = True) -> int:
    """Bytes a line takes: 10-bit lines are whole 32-bit words; 8- and 16-bit lines end on a
    32-bit boundary when ``aligned`` (what FFmpeg and facedub write), else where the samples do."""
    if bits == 10:
        return (width * channels + 2) // 3 * 4
    n = width * channels * bits // 8
    return (n + 3) // 4 * 4 if aligned else n


def decode(path: Path) -> tuple[np.ndarray, DpxHeader]:
    """(RGB pixels, header) of a DPX file: uint8 for 8 bits, uint16 for 10 (widened) and 16 bits."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror})") from None
    h = read_header(path, raw)
    w, ht, c = h.width, h.height, h.channels
    row = _row_bytes(w, c, h.bits)
    if h.data_offset + row * ht > len(raw):  # some writers do not pad 8- and 16-bit lines: tell by the size
        row = _row_bytes(w, c, h.bits, aligned=False)
    if h.data_offset + row * ht > len(raw):
        raise BadInput(f"{path}: DPX is cut short ({len(raw)} bytes, {w}x{ht} needs {h.data_offset + row * ht})")
    body = np.frombuffer(raw, np.uint8, row * ht, h.data_offset).reshape(ht, row)
    if h.bits == 8:
        px = body[:, : w * c].reshape(ht, w, c)
    elif h.bits == 16:
        px = body[:, : w * c * 2].copy().view(np.dtype(np.uint16).newbyteorder(h.endian)).reshape(ht, w, c).astype(np.uint16)
    else:
        words = body.view(np.dtype(np.uint32).newbyteorder(h.endian)).astype(np.uint32)
        shifts = (22, 12, 2) if h.packing == 1 else (20, 10, 0)
        codes = np.stack([(words >> s) & 0x3FF for s in shifts], axis=-1).reshape(ht, -1)[:, : w * c]
        codes = codes.reshape(ht, w, c).astype(np.uint16)
        px = (codes << 6) | (codes >> 4)
    return np.ascontiguousarray(px[..., :3]), h


def to_codes(pixels: np.ndarray, bits: int) -> np.ndarray:
    """uint8/uint16 samples as ``bits``-bit codes (uint16; exact for 10-bit codes widened by :func:`decode`)."""
    if bits == 10:
        if pixels.dtype == np.uint8:
            return np.rint(pixels.astype(np.float64) * (1023.0 / 255.0)).astype(np.uint16)
        return np.rint(pixels.astype(np.float64) * (1023.0 / 65535.0)).astype(np.uint16)
    if bits == 16:
        return pixels.astype(np.uint16) * 257 if pixels.dtype == np.uint8 else pixels.astype(np.uint16)
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)


def encode(pixels: np.ndarray, bits: int, tags: dict[str, str] | None = None) -> bytes:
    """H×W×3/4 uint8/uint16 as DPX bytes at ``bits`` (8, 10 or 16; 10-bit RGBA is written at 16)."""
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"DPX writer takes H×W×3/4 uint8/uint16, got {pixels.shape} {pixels.dtype}")
    ht, w, c = pixels.shape
    if bits == 10 and c == 4:
        bits = 16
    codes = to_codes(pixels, bits)
    if bits == 8:
        body = np.zeros((ht, _row_bytes(w, c, 8)), np.uint8)
        body[:, : w * c] = codes.reshape(ht, w * c)
        data = body.tobytes()
    elif bits == 16:
        body = np.zeros((ht, _row_bytes(w, c, 16)), np.uint8)
        body[:, : w * c * 2] = np.ascontiguousarray(codes.astype(">u2")).view(np.uint8).reshape(ht, w * c * 2)
        data = body.tobytes()
    else:
        cw = codes.astype(np.uint32)
        data = ((cw[..., 0] << 22) | (cw[..., 1] << 12) | (cw[..., 2] << 2)).astype(">u4").tobytes()
    tags = dict(tags or {})
    user = b""
    if tags:
        blob = json.dumps(tags, sort_keys=True, ensure_ascii=True).encode("ascii")
        user = USER_ID.encode("ascii").ljust(32, b"\x00") + blob
        user += b"\x00" * (-len(user) % 4)
    offset = HEADER_SIZE + len(user)
    hdr = bytearray(HEADER_SIZE)
    struct.pack_into(">4sI8sIIIII", hdr, 0, MAGIC_BE, offset, b"V2.0", offset + len(data), 1, 1664, 384, len(user))
    creator = tags.get("software", "facedub")[:99].encode("latin-1", "replace")
    hdr[160 : 160 + len(creator)] = creator
    struct.pack_into(">I", hdr, 660, 0xFFFFFFFF)  # not encrypted
    struct.pack_into(">HHII", hdr, 768, 0, 1, w, ht)  # orientation: left to right, top to bottom; one element
    top = (1 << bits) - 1
    struct.pack_into(">IIfIf", hdr, 780, 0, 0, 0.0, top, 1.0)
    hdr[800] = 50 if c == 3 else 51
    hdr[801] = 13  # transfer: user defined (the colour space is in the tags)
    hdr[802] = 13
    hdr[803] = bits
    struct.pack_into(">HHIII", hdr, 804, 1 if bits in (8, 10) else 0, 0, offset, 0, 0)
    return bytes(hdr) + user + data


__all__ = ["DpxHeader", "decode", "encode", "read_header", "to_codes"]
