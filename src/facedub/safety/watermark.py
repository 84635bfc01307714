"""Invisible watermark: a facedub marker and an output id hidden in the luma of every frame.

Scheme (tiled spread-spectrum with a synchronisation pattern; chosen over the DWT-DCT-SVD
starting point of DESIGN.md because it survives cropping and rescaling without knowing the
original frame size or block grid, and embeds with two saturating adds per frame):

* Payload: 16-bit marker ``0xFD0B`` + 48-bit output id (64 bits) + CRC-16 = 80 bits, coded
  with the rate-1/2, K=7 convolutional code (generators 133/171 octal, zero tail) into
  172 coded bits; decoded with a soft-decision Viterbi decoder.
* A 128×128-pixel tile of 32×32 cells (4×4 px each), repeated over the whole frame. A fixed
  keyed quarter of the cells carry a ±1 synchronisation pattern; the rest carry the coded
  bits, each bit spread over ~4.5 cells with keyed ±1 chips. The tile is added to R, G and B
  alike (a luma change), so chroma subsampling does not touch it.
* Shaping (a clean plate): each cell's amplitude follows the plate — ±1 level on flat parts
  of a large frame (a wall, sky), more where detail hides it, most inside the pasted face
  (convert passes the face's landmarks and the frame before the paste; cells the paste left
  unchanged, such as an occluder kept in front of the face, get no face share). In a frame of
  480 px or more whose pasted face covers at least :data:`FACE_TILES` tiles, the face carries
  the mark on its own terms and the plate around it gets less: nothing on flat parts, ±1 in
  detail. The earlier version added the same ±3..5 levels everywhere;
  ``Watermarker(strength=n)`` still does.
* Decoding: high-pass the luma, weight each pixel by the inverse of its neighbourhood's
  detail (whitening: quiet pixels carry the mark with less interference), estimate the tile
  period from the autocorrelation (this gives the scale after any resize), fold the frame
  modulo the period into one tile (a crop only rolls the tile cyclically), locate the roll by
  circular correlation with the sync pattern, read soft bit values, and sum them over frames
  (voting) before Viterbi decoding. The payload, layout and key are unchanged, so files
  written by the earlier version decode as before (better, with the weighting).
* A result counts as a facedub mark only when the CRC-16 *and* the 16-bit marker both
  match: 32 check bits, a chance of about 2⁻³² per decoding attempt on unmarked media (at
  most four attempts per file, at the four most promising scales: about 1 in 10⁹). Two
  marker values are accepted: ``0xFD0B`` (a facedub output, a swap) and ``0xFD0A``
  ("pristine": a real clip of a ``facedub dataset``, decoded, marked at the same strength and
  encoded like its swapped twin but otherwise unaltered), which doubles that chance to 2⁻³¹.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np

TILE = 128  # pixels per tile side at embedding scale
CELL = 4  # pixels per cell side
GRID = TILE // CELL  # cells per tile side (32)
BIN = 2  # embedding pixels per fold bin when decoding (half a cell)
NB = TILE // BIN  # fold bins per tile side (64)
MARKER = 0xFD0B  # the facedub marker, 16 bits: a facedub output (a swap)
PRISTINE_MARKER = 0xFD0A  # the same place: an unaltered clip facedub re-encoded into a detection dataset
MARKER_BITS = 16
ID_BITS = 48  # output id: 12 hex digits
PAYLOAD_BITS = MARKER_BITS + ID_BITS  # 64
CRC_BITS = 16
INFO_BITS = PAYLOAD_BITS + CRC_BITS  # 80
K = 7  # constraint length of the convolutional code
GENERATORS = (0o133, 0o171)
CODED_BITS = (INFO_BITS + K - 1) * len(GENERATORS)  # 172
SYNC_FRACTION = 0.25  # share of cells carrying the sync pattern
# The earlier uniform mark (``Watermarker(strength=...)``, for comparisons), by short side:
DEFAULT_STRENGTH = 3  # luma levels ± per pixel for frames ≥ LARGE_SIDE px on the short side (PSNR ≈ 38.6 dB)
MEDIUM_STRENGTH = 4  # short side MEDIUM_SIDE..LARGE_SIDE (fewer pixels to spread the payload over; ≈ 36 dB)
SMALL_STRENGTH = 5  # short side below MEDIUM_SIDE (≈ 34 dB)
LARGE_SIDE = 480
MEDIUM_SIDE = 320
KEY = b"facedub-watermark-v1"


# ----------------------------------------------------------------------------------------
# Payload coding: CRC-16 + convolutional code + Viterbi


def _int_to_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _bits_to_int(bits: Iterable[int]) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def crc16(bits: list[int]) -> int:
    """CRC-16/CCITT (poly 0x1021, init 0xFFFF) over a bit list."""
    crc = 0xFFFF
    for b in bits:
        top = ((crc >> 15) & 1) ^ int(b)
        crc = (crc << 1) & 0xFFFF
        if top:
            crc ^= 0x1021
    return crc


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


_REGS = np.arange(1 << K)
_OUT = np.stack([_parity(_REGS & g) for g in GENERATORS], 1)  # (128, 2) output bits per register


def conv_encode(bits: list[int]) -> np.ndarray:
    state = 0
    out = []
    for b in list(bits) + [0] * (K - 1):
        reg = (int(b) << (K - 1)) | state
        out.extend(int(o) for o in _OUT[reg])
        state = reg >> 1
    return np.asarray(out, dtype=np.int8)


def viterbi_decode(soft: np.ndarray, n_info: int) -> list[int]:
    """Soft-decision Viterbi for :func:`conv_encode`. ``soft`` > 0 means bit 1 is likelier."""
    n_out = len(GENERATORS)
    steps = len(soft) // n_out
    ns_states = 1 << (K - 1)
    signs = (2 * _OUT - 1).astype(np.float64)  # (128, 2)
    metric = np.full(ns_states, -np.inf)
    metric[0] = 0.0
    ns = np.arange(ns_states)
    regs = np.stack([(ns << 1) | 0, (ns << 1) | 1], 1)  # the two registers leading into each state
    prev = regs & (ns_states - 1)
    decisions = np.zeros((steps, ns_states), dtype=np.int8)
    for t in range(steps):
        r = soft[t * n_out : (t + 1) * n_out]
        bm = signs @ r  # (128,)
        cand = metric[prev] + bm[regs]
        choice = np.argmax(cand, 1)
        decisions[t] = choice
        metric = cand[ns, choice]
    state = 0
    bits = []
    for t in range(steps - 1, -1, -1):
        bits.append(state >> (K - 2))
        state = ((state << 1) | int(decisions[t, state])) & (ns_states - 1)
    bits.reverse()
    return bits[:n_info]


def encode_payload(output_id: str, pristine: bool = False) -> np.ndarray:
    """Coded bits (0/1, length CODED_BITS) for the marker + a 12-hex-digit output id.

    ``pristine``: the marker says "pristine" (:data:`PRISTINE_MARKER`: real footage passed
    through facedub's decode, mark and encode unaltered, as the real half of a dataset)."""
    oid = parse_output_id(output_id)
    payload = _int_to_bits(PRISTINE_MARKER if pristine else MARKER, MARKER_BITS) + _int_to_bits(oid, ID_BITS)
    info = payload + _int_to_bits(crc16(payload), CRC_BITS)
    return conv_encode(info)


def parse_output_id(output_id: str) -> int:
    try:
        v = int(output_id, 16)
    except (TypeError, ValueError):
        raise ValueError(f"output id {output_id!r} is not {ID_BITS // 4} hex digits") from None
    if len(output_id) != ID_BITS // 4 or v >= (1 << ID_BITS):
        raise ValueError(f"output id {output_id!r} is not {ID_BITS // 4} hex digits")
    return v


# ----------------------------------------------------------------------------------------
# Keyed patterns


@dataclass(frozen=True)
class _Layout:
    sync_mask: np.ndarray  # (GRID, GRID) bool: cells carrying sync
    sync: np.ndarray  # (GRID, GRID) ±1 (0 outside sync cells)
    bit_of_cell: np.ndarray  # (GRID, GRID) int: coded bit index, -1 for sync cells
    chip: np.ndarray  # (GRID, GRID) ±1 spreading chips for data cells


def _layout() -> _Layout:
    seed = int.from_bytes(hashlib.sha256(KEY).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    n = GRID * GRID
    order = rng.permutation(n)
    n_sync = int(round(n * SYNC_FRACTION))
    sync_mask = np.zeros(n, bool)
    sync_mask[order[:n_sync]] = True
    bit_of_cell = np.full(n, -1, np.int64)
    data_cells = order[n_sync:]
    bit_of_cell[data_cells] = np.arange(len(data_cells)) % CODED_BITS
    sync = np.where(sync_mask, rng.choice([-1.0, 1.0], n), 0.0)
    chip = np.where(sync_mask, 0.0, rng.choice([-1.0, 1.0], n))
    return _Layout(sync_mask.reshape(GRID, GRID), sync.reshape(GRID, GRID), bit_of_cell.reshape(GRID, GRID), chip.reshape(GRID, GRID))


_LAYOUT = _layout()


def tile_pattern(coded: np.ndarray) -> np.ndarray:
    """The ±1 cell pattern (GRID×GRID) for the given coded bits."""
    L = _LAYOUT
    signs = 2.0 * np.asarray(coded, np.float64) - 1.0
    data = np.where(L.bit_of_cell >= 0, L.chip * signs[np.maximum(L.bit_of_cell, 0)], 0.0)
    return L.sync + data


# ----------------------------------------------------------------------------------------
# Embedding


@dataclass(frozen=True)
class Amplitudes:
    """Luma levels (±) of the mark per 4×4 cell, by what the cell shows."""

    flat: float  # a flat cell of the plate (sky, a wall, skin): little, grain shows there
    textured: float  # a cell in detail (hair, foliage, fabric), which hides the mark
    face: float  # inside the swapped face (the convert pipeline passes its landmarks)
    # (flat, textured) for the plate of a frame whose pasted face is big enough to carry the
    # mark alone (:data:`FACE_TILES`); None: the plate keeps ``flat`` / ``textured``.
    beside_face: tuple[float, float] | None = None


# By the frame's short side: small frames have fewer tiles to spread the payload over.
# Large frames with a big face: ±7 in the face and 0 / ±1 on the plate read after a CRF-28
# re-encode, a 0.5× downscale and a 10 % crop of a CRF-15 output (512² shared clips, face ≈
# 2.3–3 tiles; ±6 missed the CRF-28 re-encode once); the plate outside the face then differs
# from the input by what the codec changes (BENCHMARKS.md, 'safety').
LARGE_AMPLITUDES = Amplitudes(flat=1.0, textured=2.0, face=7.0, beside_face=(0.0, 1.0))  # ≥ LARGE_SIDE
MEDIUM_AMPLITUDES = Amplitudes(flat=2.0, textured=3.0, face=5.0)  # MEDIUM_SIDE..LARGE_SIDE
SMALL_AMPLITUDES = Amplitudes(flat=3.0, textured=5.0, face=6.0)  # below MEDIUM_SIDE
# Tiles' worth of face cells (face weight above one half) from which a face carries the mark
# and the plate gets ``beside_face``: every cell of the tile then recurs inside the face twice
# on average, also after a 10 % crop.
FACE_TILES = 2.0
# Texture measure (luma levels, RMS detail around a cell) at which a cell starts to count as
# textured, and the further rise over which it becomes fully textured.
TEXTURE_FROM = 5.0
TEXTURE_SPAN = 10.0
FACE_INSET = 0.05  # the face amplitude stays this share of the face size inside its outline


def amplitudes_for(h: int, w: int) -> Amplitudes:
    side = min(h, w)
    return LARGE_AMPLITUDES if side >= LARGE_SIDE else MEDIUM_AMPLITUDES if side >= MEDIUM_SIDE else SMALL_AMPLITUDES


def texture(rgb: np.ndarray) -> np.ndarray:
    """RMS luma detail around each 4×4 cell, one value per cell (ceil(h/4) × ceil(w/4), float32).

    The detail inside the cell plus the cell's difference from its neighbours, averaged over a
    few cells: what masks a change of a few grey levels to the eye.
    """
    import cv2

    h, w = rgb.shape[:2]
    gh, gw = -(-h // CELL), -(-w // CELL)
    y = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if (gh * CELL, gw * CELL) != (h, w):
        y = cv2.copyMakeBorder(y, 0, gh * CELL - h, 0, gw * CELL - w, cv2.BORDER_REPLICATE)
    # Detail finer than 2 px hardly masks anything after a codec: measure at half size (cheap).
    y = cv2.resize(y, (gw * CELL // 2, gh * CELL // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    mean = cv2.resize(y, (gw, gh), interpolation=cv2.INTER_AREA)
    inner = np.maximum(cv2.resize(y * y, (gw, gh), interpolation=cv2.INTER_AREA) - mean * mean, 0.0)
    around = mean - cv2.GaussianBlur(mean, (0, 0), 1.0)
    return np.sqrt(cv2.GaussianBlur(inner + around * around, (0, 0), 1.5))


def face_cells(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Weight 0..1 per cell: 1 well inside the convex hull of the face ``points`` (frame
    pixels), falling to 0 before the hull's edge; nothing outside it."""
    import cv2

    gh, gw = shape
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 3:
        return np.zeros((gh, gw), np.float32)
    hull = np.zeros((gh, gw), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts / CELL - 0.5).astype(np.int32)), 1)
    size = float(np.max(pts.max(0) - pts.min(0))) / CELL
    k = max(2, int(round(FACE_INSET * size)))
    inner = cv2.erode(hull, np.ones((2 * k + 1, 2 * k + 1), np.uint8)).astype(np.float32)
    return cv2.GaussianBlur(inner, (0, 0), 0.8) * hull


def carries_mark(face_weight: np.ndarray) -> bool:
    """Whether a face with these per-cell weights (:func:`face_cells`) is big enough to carry
    the mark without the plate's help: :data:`FACE_TILES` tiles' worth of cells or more."""
    return int(np.count_nonzero(face_weight > 0.5)) >= FACE_TILES * GRID * GRID


PASTED_LEVELS = 1.0  # mean luma change in a cell above which the cell counts as pasted


def changed_cells(rgb: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Bool per 4×4 cell: the frame differs there from the plate (what convert pasted; an
    occluder kept in front of the face, or a face left as it was, is not)."""
    import cv2

    h, w = rgb.shape[:2]
    gh, gw = -(-h // CELL), -(-w // CELL)
    d = cv2.absdiff(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), cv2.cvtColor(np.ascontiguousarray(plate), cv2.COLOR_RGB2GRAY))
    if (gh * CELL, gw * CELL) != (h, w):
        d = cv2.copyMakeBorder(d, 0, gh * CELL - h, 0, gw * CELL - w, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(d.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA) > PASTED_LEVELS


class Watermarker:
    """Embeds one output id into frames.

    The mark is shaped per frame (:func:`amplitudes_for`): weak on flat parts of the plate,
    stronger where the plate has detail to hide it, strongest inside the swapped face when its
    landmarks are given (and, in a large frame with a big face, weaker still on the plate
    around it: :data:`FACE_TILES`). ``embed`` costs a texture measure at cell resolution and two
    saturating adds (≈1–2 ms at 512²). ``strength`` = a fixed number of levels gives the
    uniform mark facedub wrote before the shaping (kept for comparisons); the decoder reads both.
    """

    def __init__(self, output_id: str, strength: int | None = None, pristine: bool = False) -> None:
        self.output_id = output_id
        self.strength = strength  # None: shaped; an int: uniform ± strength everywhere (old)
        self.pristine = pristine  # the payload's marker says "pristine" (a dataset's real clip)
        self._cells = tile_pattern(encode_payload(output_id, pristine)).astype(np.float32)  # GRID×GRID ±1
        self._tile = np.kron(self._cells, np.ones((CELL, CELL))).astype(np.int16)
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._cell_cache: dict[tuple[int, int], np.ndarray] = {}

    def _planes(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        key = (h, w)
        if key not in self._cache:
            reps = (-(-h // TILE), -(-w // TILE))
            full = np.tile(self._tile, reps)[:h, :w] * (self.strength or strength_for(h, w))
            pos = np.repeat(np.clip(full, 0, 255).astype(np.uint8)[:, :, None], 3, 2)
            neg = np.repeat(np.clip(-full, 0, 255).astype(np.uint8)[:, :, None], 3, 2)
            self._cache = {key: (pos, neg)}  # one size at a time (a video has one)
        return self._cache[key]

    def _pattern_cells(self, gh: int, gw: int) -> np.ndarray:
        key = (gh, gw)
        if key not in self._cell_cache:
            self._cell_cache = {key: np.tile(self._cells, (-(-gh // GRID), -(-gw // GRID)))[:gh, :gw].copy()}
        return self._cell_cache[key]

    def amplitude(self, plate: np.ndarray, face: np.ndarray | None = None, pasted: np.ndarray | None = None) -> np.ndarray:
        """Levels of the mark per cell (ceil(h/4) × ceil(w/4)) for a frame showing ``plate``,
        with a face whose hull has the points ``face``; ``pasted`` (bool per cell) limits the
        face's share to the cells the paste changed."""
        h, w = plate.shape[:2]
        a = amplitudes_for(h, w)
        t = np.clip((texture(plate) - TEXTURE_FROM) / TEXTURE_SPAN, 0.0, 1.0)
        f = None
        flat, textured = a.flat, a.textured
        if face is not None:
            f = face_cells(face, t.shape)
            if pasted is not None:
                f = f * pasted
            if a.beside_face is not None and carries_mark(f):
                flat, textured = a.beside_face
        amp = flat + (textured - flat) * t
        if f is not None:
            amp = amp * (1.0 - f) + a.face * f
        return amp

    def embed(self, rgb: np.ndarray, face: np.ndarray | None = None, plate: np.ndarray | None = None, pasted: np.ndarray | None = None) -> np.ndarray:
        """Return a marked copy of an H×W×3 uint8 RGB frame.

        ``face``: points (N×2, frame pixels; the 68 landmarks) of a face pasted into this
        frame; the mark is strongest inside their hull. ``plate``: the frame before anything
        was pasted into it (same size); its texture shapes the mark, so that outside the face
        an output's mark is the one its input frame alone would get, and inside the hull only
        the cells the paste changed get the face's share. Default: ``rgb`` itself.
        ``pasted`` (bool per cell, ceil(h/4) × ceil(w/4)) gives those cells directly instead:
        a dataset's real clip is marked with the cells its swapped twin changed, so both get
        the same amplitude in every cell.
        """
        import cv2

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H×W×3 uint8 RGB frame, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if self.strength is not None:
            pos, neg = self._planes(h, w)
            out = cv2.add(rgb, pos)
            return cv2.subtract(out, neg, dst=out)
        if plate is None:
            plate = rgb
        elif plate.shape != rgb.shape or plate.dtype != np.uint8:
            raise ValueError(f"plate {plate.shape} {plate.dtype} does not match the frame {rgb.shape}")
        elif face is not None and pasted is None:
            pasted = changed_cells(rgb, plate)
        amp = self.amplitude(plate, face, pasted)
        delta = np.rint(amp * self._pattern_cells(*amp.shape))
        size = (amp.shape[1] * CELL, amp.shape[0] * CELL)
        planes = []
        for d in (np.clip(delta, 0, 255), np.clip(-delta, 0, 255)):  # the adds, then the subtractions
            d8 = np.repeat(d.astype(np.uint8)[:, :, None], 3, 2)  # the same change to R, G and B
            planes.append(cv2.resize(d8, size, interpolation=cv2.INTER_NEAREST)[:h, :w])
        out = cv2.add(rgb, planes[0])
        return cv2.subtract(out, planes[1], dst=out)


def strength_for(h: int, w: int) -> int:
    """Levels of the uniform mark facedub wrote before the shaping (``Watermarker(strength=...)``)."""
    side = min(h, w)
    return DEFAULT_STRENGTH if side >= LARGE_SIDE else MEDIUM_STRENGTH if side >= MEDIUM_SIDE else SMALL_STRENGTH


def embed(rgb: np.ndarray, output_id: str, strength: int | None = None, face: np.ndarray | None = None, plate: np.ndarray | None = None) -> np.ndarray:
    """One-off embedding (use :class:`Watermarker` for a stream of frames)."""
    return Watermarker(output_id, strength).embed(rgb, face, plate)


# ----------------------------------------------------------------------------------------
# Decoding


@dataclass(frozen=True)
class WatermarkResult:
    found: bool  # marker and CRC both matched
    output_id: str | None  # the decoded id when found
    bits_agreeing: int  # hard decisions agreeing with the re-encoded decoded codeword
    bits_total: int  # CODED_BITS
    sync_z: float  # sync correlation peak in standard deviations of the correlation surface
    score: float  # normalised correlation of soft bits with the decoded codeword, -1..1
    scale: float  # estimated size of the examined frames relative to the marked original
    frames: int  # frames combined
    pristine: bool = False  # the marker found says "pristine" (a dataset's unaltered real clip), not a swap


def luma(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    rgb = rgb[..., :3].astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def highpass(y: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Remove the image content below the cell frequency and clip outliers (edges)."""
    import cv2

    sigma = max(1.0, 0.25 * CELL * scale)
    hp = y - cv2.GaussianBlur(y, (0, 0), sigma)
    lim = 3.0 * float(np.std(hp)) + 1e-6
    return np.clip(hp, -lim, lim)


WEIGHT_SIGMA = 8.0  # pixels: the neighbourhood whose detail sets a pixel's weight
WEIGHT_FLOOR = 4.0  # added to the local variance (levels²): codec noise, and no division by ~0


def reliability(hp: np.ndarray) -> np.ndarray:
    """Weight of each pixel's high-passed luma in the fold: the inverse of the local variance.

    Detail (hair, edges) leaks far more into the high-pass than the mark puts there, so those
    pixels count less and quiet ones more: a whitening step that makes every mark, the shaped
    one and the older uniform one alike, read from fewer frames.
    """
    import cv2

    return 1.0 / (cv2.GaussianBlur(hp * hp, (0, 0), WEIGHT_SIGMA) + WEIGHT_FLOOR)


def _autocorr(hp: np.ndarray) -> np.ndarray:
    h, w = hp.shape
    f = np.fft.rfft2(hp, s=(2 * h, 2 * w))  # zero-padded: linear, not circular
    ac = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w))[:h, :w]
    # normalise by overlap area so long lags are not penalised
    oy = (h - np.arange(h))[:, None].astype(np.float64)
    ox = (w - np.arange(w))[None, :].astype(np.float64)
    return ac / (oy * ox)


def _period_candidates(ac: np.ndarray, n: int = 3) -> list[float]:
    """Tile period candidates (pixels) from summed autocorrelations, best first."""
    h, w = ac.shape
    lim = min(h, w) * 3 // 4
    if lim < 20:
        return []
    prof = ac[0, :lim] + ac[:lim, 0]
    lo = 16
    if lim <= lo + 2:
        return []
    seg = prof[lo:lim]
    # local maxima
    peaks = [i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]]
    peaks.sort(key=lambda i: -seg[i])
    out = []
    for i in peaks[:n]:
        # parabolic refinement
        a, b, c = seg[i - 1], seg[i], seg[i + 1]
        den = a - 2 * b + c
        d = 0.5 * (a - c) / den if den != 0 else 0.0
        out.append(float(lo + i + d))
    return out


def _fold(hp: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``hp`` into NB×NB bins modulo the tile (at the given scale); returns sums, counts."""
    h, w = hp.shape
    by = (np.floor(np.arange(h) / (scale * BIN)).astype(np.int64)) % NB
    bx = (np.floor(np.arange(w) / (scale * BIN)).astype(np.int64)) % NB
    idx = (by[:, None] * NB + bx[None, :]).ravel()
    sums = np.bincount(idx, weights=hp.ravel().astype(np.float64), minlength=NB * NB).reshape(NB, NB)
    counts = np.bincount(idx, minlength=NB * NB).reshape(NB, NB).astype(np.float64)
    return sums, counts


_SYNC_BINS = np.kron(_LAYOUT.sync, np.ones((CELL // BIN, CELL // BIN)))
_SYNC_F = np.conj(np.fft.fft2(_SYNC_BINS))


def _sync(fold: np.ndarray) -> tuple[int, int, float]:
    """Circular correlation with the sync pattern: (dy, dx) roll in bins and z-score of the peak."""
    c = np.real(np.fft.ifft2(np.fft.fft2(fold) * _SYNC_F))
    k = int(np.argmax(c))
    dy, dx = divmod(k, NB)
    sd = float(np.std(c)) + 1e-12
    return dy, dx, float((c.flat[k] - np.mean(c)) / sd)


def _soft_bits(fold: np.ndarray, dy: int, dx: int) -> np.ndarray:
    aligned = np.roll(fold, (-dy, -dx), (0, 1))
    r = CELL // BIN
    cells = aligned.reshape(GRID, r, GRID, r).sum((1, 3))
    L = _LAYOUT
    m = L.bit_of_cell >= 0
    return np.bincount(L.bit_of_cell[m], weights=(cells * L.chip)[m], minlength=CODED_BITS)


def _mean_fold(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), 0.0)


def _decode_soft(soft: np.ndarray) -> tuple[bool, str | None, int, float]:
    ok, oid, agree, score, _ = _decode_soft_kind(soft)
    return ok, oid, agree, score


def _decode_soft_kind(soft: np.ndarray) -> tuple[bool, str | None, int, float, bool]:
    """(found, output id, bits agreeing, score, pristine). Either marker counts as found: two
    accepted markers double the chance of a false find, to about 2⁻³¹ an attempt."""
    info = viterbi_decode(soft, INFO_BITS)
    payload, crc = info[:PAYLOAD_BITS], info[PAYLOAD_BITS:]
    marker = _bits_to_int(payload[:MARKER_BITS])
    ok = _bits_to_int(crc) == crc16(payload) and marker in (MARKER, PRISTINE_MARKER)
    code = 2.0 * conv_encode(info) - 1.0
    agree = int(np.sum(np.sign(soft) == code))
    score = float(np.dot(soft, code) / (np.linalg.norm(soft) * np.sqrt(len(code)) + 1e-12))
    oid = f"{_bits_to_int(payload[MARKER_BITS:]):0{ID_BITS // 4}x}" if ok else None
    return ok, oid, agree, score, bool(ok and marker == PRISTINE_MARKER)


# Scales tried when the autocorrelation finds no period (frames smaller than two tiles).
FALLBACK_SCALES = (1.0, 0.5, 0.75, 0.9, 1.1, 0.6, 0.8, 1.25, 1.5, 2.0)


class WatermarkDecoder:
    """Accumulates frames (all of one size), then decodes by combining them.

    Scale and tile roll are shared by all frames of a file (one crop, one resize), so the
    folded tiles are summed over frames before synchronisation and bit reading: each frame
    votes with its soft bit values.
    """

    def __init__(self, max_frames: int = 64) -> None:
        self.max_frames = max_frames
        self._sum: np.ndarray | None = None  # sum over frames of weight × high-passed luma
        self._weight: np.ndarray | None = None  # sum over frames of the weights
        self._n = 0

    def add(self, rgb: np.ndarray) -> None:
        if self._n >= self.max_frames:
            return
        hp = highpass(luma(rgb))
        w = reliability(hp)
        if self._sum is None or self._weight is None:
            self._sum = (hp * w).astype(np.float64)
            self._weight = w.astype(np.float64)
        elif hp.shape != self._sum.shape:
            raise ValueError("all frames given to one decoder must have the same size")
        else:
            self._sum += hp * w
            self._weight += w
        self._n += 1

    @property
    def frames(self) -> int:
        return self._n

    def _fold_all(self, scale: float) -> np.ndarray:
        # Folding is linear and every frame shares one geometry: fold the summed frame once
        # (a weighted mean per bin: the weighted sums over the summed weights).
        assert self._sum is not None and self._weight is not None
        return _mean_fold(_fold(self._sum, scale)[0], _fold(self._weight, scale)[0])

    def _scale_candidates(self) -> list[tuple[float, float]]:
        """(scale, sync z) per seed scale, refined; best z first."""
        assert self._sum is not None
        ac = _autocorr(self._sum)
        periods = _period_candidates(ac / (ac[0, 0] + 1e-12))
        scales = [p / TILE for p in periods]
        scales = [s for s in scales if 0.2 <= s <= 4.0]
        seeds = scales + [s for s in FALLBACK_SCALES if all(abs(s - t) / t > 0.01 for t in scales)]
        out: list[tuple[float, float]] = []
        for s0 in seeds:
            best = (s0, -np.inf)
            for s in s0 * (1.0 + np.arange(-6, 7) * 0.0025):
                z = _sync(self._fold_all(float(s)))[2]
                if z > best[1]:
                    best = (float(s), z)
            out.append(best)
            if best[1] > 12.0:  # an unmistakable peak: stop searching
                break
        out.sort(key=lambda t: -t[1])
        return out

    def result(self, attempts: int = 4) -> WatermarkResult:
        """Decode at the ``attempts`` most promising scales; the first one passing CRC and marker wins."""
        if self._sum is None:
            return WatermarkResult(False, None, 0, CODED_BITS, 0.0, 0.0, 1.0, 0)
        first: WatermarkResult | None = None
        for scale, _ in self._scale_candidates()[:attempts]:
            fold = self._fold_all(scale)
            dy, dx, z = _sync(fold)
            soft = _soft_bits(fold, dy, dx)
            ok, oid, agree, score, pristine = _decode_soft_kind(soft)
            r = WatermarkResult(ok, oid, agree, CODED_BITS, z, score, scale, self._n, pristine)
            if ok:
                return r
            first = first or r
        assert first is not None
        return first


def decode(frames: Iterable[np.ndarray] | np.ndarray, max_frames: int = 64) -> WatermarkResult:
    """Decode from one RGB image or an iterable of same-size RGB frames."""
    dec = WatermarkDecoder(max_frames)
    if isinstance(frames, np.ndarray) and frames.ndim in (2, 3) and (frames.ndim == 2 or frames.shape[-1] in (3, 4)):
        dec.add(frames)
    else:
        for f in frames:
            dec.add(f)
            if dec.frames >= max_frames:
                break
    return dec.result()
