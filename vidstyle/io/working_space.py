"""Source pixel values <-> the style network's working space, exactly invertibly.

The network was trained on display-referred sRGB/BT.709 pictures, so HDR video (PQ, HLG,
BT.2020 primaries) and scene-linear EXR plates are turned into that kind of picture before
the network and back after. `to_working` goes: source curve -> linear light relative to
reference white (source primaries) -> highlight roll-off per channel -> BT.2020 -> BT.709
matrix -> sRGB curve (piecewise, applied as sign(x) * f(|x|)). `from_working` undoes each
step in reverse order, so `--strength 0` gives back the source to float32 precision.

The roll-off: identity below the knee (0.8 x reference white), so everything up to diffuse
white is exactly the SDR rendition (sRGB of light / white); above it
y = k + c * ln(1 + (x - k) / c): value k and slope 1 at the knee (C1), strictly increasing,
compressive, inverse x = k + c * (exp((y - k) / c) - 1), with `c` solved so the documented
peak lands exactly on working 1.0. It does not approach 1 asymptotically like a Reinhard
curve: Reinhard's slope near a 10,000-nit peak is ~1e-5, too flat for float32 working values
to invert to 1e-5 in PQ code values (this curve's is ~5e-4), and it would leave a dead band
below 1.0 that decodes to the clamp.

The roll-off comes before the primaries matrix on purpose: the matrix mixes channels, and in
float32 it leaves ~1e-7 of the brightest component in the others. On rolled-off light (<= 1)
that is ~1e-7 of reference white; on raw light (up to 49 x white) it was measured to cost up
to 2e-2 in PQ code values for the dark component of a bright saturated colour.

Choices (defaults; `white`, `peak` and `knee` are fields):

* PQ (SMPTE ST 2084): reference white 203 nits (ITU-R BT.2408) -> working 0.934 (100 nits
  -> 0.730, 1000 -> 0.971); peak = 10,000 nits, the format's maximum, so no PQ signal is
  clipped (a mastering peak, e.g. `peak=1000`, gives the network more of the range;
  brighter values then go above 1).
* HLG (ARIB STD-B67 / BT.2100): inverse OETF, then the BT.2100 OOTF for a nominal 1000-nit
  display (gamma 1.2, from the peak), so the network sees what a viewer sees and 75 % signal
  is 203 nits, the same reference white as PQ (-> working 0.943). The OOTF inverts in closed
  form (below a scene luminance of 1e-8 its gain is held constant, so black inverts without
  0/0). Peak = the nominal display peak (signal 1.0), 1000 nits.
* linear (scene-linear EXR): reference white = 1.0 (diffuse white; 0.18 = mid grey ->
  0.461), -> working 0.934; no OOTF (shown as a compositor's sRGB viewer would); peak =
  64 x white on working 1.0, so ordinary highlights keep a usable part of the range, while
  anything an EXR half plate can hold (to 65,504, working 1.074) still round-trips.
* sdr: the working encoding is the source's own (BT.709/sRGB/BT.1886/unknown): identity for
  BT.709 primaries. With BT.2020 primaries the sRGB curve linearises for the matrix and
  re-encodes (no roll-off).

Working values of BT.709 sources stay in [0, 1] (linear: [-1.07, 1.07]); with BT.2020
primaries a saturated colour can reach about -0.83 (negative components are colours outside
BT.709) and 1.25. They are never clipped here: the pipeline clamps what the network sees and
keeps the unclipped values for the strength mix.

`from_working` accepts any input. Working values are clipped to what a source can produce and
rolled-off light to the roll-off of the format's limit (PQ 10,000 nits, HLG its peak, linear
65,504 = half-float max), so nothing decodes to inf/NaN; network output in [0, 1] decodes to
at most the peak (working 1.0 -> the peak's code value). PQ/HLG light is clipped at 0 and HLG
scene light at 1 (a display colour the OOTF cannot make from a legal signal).

BT.2020 -> BT.709 is the 3x3 matrix on linear light derived from the xy chromaticities (D65)
in float64; its inverse is computed from it in float64; both are cast to float32.

Measured round trips (float32): PQ/HLG code values within 3e-6 (BT.709) and within 1e-5 for
BT.2020 when every component is >= 0.1 (PQ 0.3 nits). A component at exactly 0 beside a
bright one (a fully saturated BT.2020 primary) comes back as ~1e-7 of its neighbour, which
the steep PQ/HLG toe makes up to 1.1e-3 in code value (about one 10-bit code step). Linear:
within 3e-5 relative per component (BT.709), 5e-5 of the pixel's largest (BT.2020).

Written with numpy from the standards' formulas, not OpenColorIO: its CPU builtins
(ST-2084, HLG-OETF-INVERSE) measured no faster than numpy's power here, and cover neither
the OOTF nor the roll-off. Frames are converted
in blocks of 32k pixels so the temporaries stay in cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

TRANSFERS = ("sdr", "pq", "hlg", "linear")
PRIMARIES = ("bt709", "bt2020")
MODES = ("auto", "off")

# FFmpeg AVColorTransferCharacteristic / AVColorPrimaries, as PyAV reports them.
TRC_LINEAR, TRC_SMPTE2084, TRC_ARIB_STD_B67 = 8, 16, 18
PRI_BT709, PRI_UNSPECIFIED, PRI_BT2020 = 1, 2, 9

REFERENCE_WHITE_NITS = 203.0  # ITU-R BT.2408 HDR reference white (PQ and HLG)
PQ_MAX_NITS = 10000.0  # the top of the ST 2084 signal range
HLG_PEAK_NITS = 1000.0  # BT.2100 nominal display peak for the OOTF
LINEAR_WHITE = 1.0  # scene-linear diffuse white
LINEAR_PEAK = 64.0  # x reference white, on working 1.0
HALF_MAX = 65504.0  # largest finite float16: the most an EXR half plate holds
KNEE = 0.8

# SMPTE ST 2084
_M1 = 2610 / 16384
_M2 = 2523 / 4096 * 128
_C1 = 3424 / 4096
_C2 = 2413 / 4096 * 32
_C3 = 2392 / 4096 * 32
# ARIB STD-B67 / BT.2100 HLG
_HA = 0.17883277
_HB = 1 - 4 * _HA
_HC = 0.5 - _HA * math.log(4 * _HA)
_HLG_MIN_Y = 1e-8  # scene luminance below which the OOTF gain is held constant
# sRGB (IEC 61966-2-1); the decode threshold is the encode threshold's image, so the two
# branches of encode and decode pair up exactly.
_SRGB_T = 0.0031308
_SRGB_T_ENC = _SRGB_T * 12.92

_XY = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
_D65 = (0.3127, 0.3290)


def _rgb_to_xyz(primaries: str) -> np.ndarray:
    """The RGB -> CIE XYZ matrix (float64) of a primaries set with a D65 white."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in _XY[primaries]]).T
    wx, wy = _D65
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    return xyz * np.linalg.solve(xyz, white)


M_2020_TO_709 = np.linalg.inv(_rgb_to_xyz("bt709")) @ _rgb_to_xyz("bt2020")  # float64
M_709_TO_2020 = np.linalg.inv(M_2020_TO_709)


class _Consts(NamedTuple):
    """float32 scalars and matrices one WorkingSpace needs, computed once."""

    to_rel: np.float32  # source units (nits, scene value, 1 for sdr) -> x reference white
    from_rel: np.float32
    knee: np.float32
    c: np.float32  # roll-off: y = k + c * ln(1 + (x - k) / c) above the knee
    inv_c: np.float32
    limit: np.float32  # clamp of rolled-off light in from_working (no inf)
    enc_limit: np.float32  # |working value| clamp: no source produces more
    fwd: np.ndarray | None  # (3, 3) float32, applied as rows @ fwd: source -> BT.709
    inv: np.ndarray | None
    luma: np.ndarray  # (3,) float32: luminance weights of the source primaries (HLG OOTF)
    alpha_rel: np.float32  # HLG: nominal peak / reference white
    gamma: float  # HLG OOTF system gamma


@functools.lru_cache(maxsize=64)
def _rolloff_c(knee: float, peak_rel: float) -> float:
    """c such that k + c * ln(1 + (peak - k) / c) == 1 (exists when peak > 1 > k)."""
    span, target = peak_rel - knee, 1.0 - knee

    def g(c: float) -> float:  # increasing in c, from 0 to `span`
        return c * math.log1p(span / c)

    lo, hi = 0.0, 1.0
    while g(hi) < target:
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if g(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-17 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class WorkingSpace:
    """How a source's pixel values map into the network's working space and back.

    `white` and `peak` default per transfer (None): pq/hlg in nits (203; 10,000 for pq, the
    1000-nit nominal display peak for hlg, which also sets the OOTF gamma), linear in scene
    values (1.0; 64.0). `peak` is what working 1.0 decodes to; `knee` is the linear working
    value (1.0 = reference white) where the roll-off starts. See the module docstring."""

    transfer: str = "sdr"  # "sdr" (BT.709/sRGB/BT.1886/unknown), "pq", "hlg", "linear"
    primaries: str = "bt709"  # "bt709" or "bt2020"
    white: float | None = None
    peak: float | None = None
    knee: float = KNEE

    def __post_init__(self) -> None:
        if self.transfer not in TRANSFERS:
            raise ValueError(f"unknown transfer {self.transfer!r} (one of {', '.join(TRANSFERS)})")
        if self.primaries not in PRIMARIES:
            raise ValueError(
                f"unknown primaries {self.primaries!r} (one of {', '.join(PRIMARIES)})"
            )
        if not 0.0 < self.knee < 1.0:
            raise ValueError(f"knee must be in (0, 1), got {self.knee}")
        if self.transfer == "sdr":
            return
        white, peak = self.white_value, self.peak_value
        if not (white > 0 and math.isfinite(white)):
            raise ValueError(f"reference white must be positive, got {white}")
        if not (peak > white and math.isfinite(peak)):
            raise ValueError(f"peak ({peak}) must be above reference white ({white})")
        if self.transfer == "pq" and peak > PQ_MAX_NITS:
            raise ValueError(f"PQ peak ({peak}) is above the format's {PQ_MAX_NITS:g} nits")

    @property
    def white_value(self) -> float:
        """Reference white in source units (nits for pq/hlg, scene value for linear)."""
        if self.white is not None:
            return float(self.white)
        return LINEAR_WHITE if self.transfer in ("linear", "sdr") else REFERENCE_WHITE_NITS

    @property
    def peak_value(self) -> float:
        """What working 1.0 decodes to, in source units."""
        if self.peak is not None:
            return float(self.peak)
        return {
            "pq": PQ_MAX_NITS,
            "hlg": HLG_PEAK_NITS,
            "linear": LINEAR_PEAK * self.white_value,
            "sdr": 1.0,
        }[self.transfer]

    @property
    def identity(self) -> bool:
        """True for sdr + bt709: the reader/writer skip the calls entirely."""
        return self.transfer == "sdr" and self.primaries == "bt709"

    @functools.cached_property
    def _k(self) -> _Consts:
        f32 = np.float32
        white, peak = self.white_value, self.peak_value
        wide = self.primaries == "bt2020"
        if self.transfer == "sdr":  # no roll-off: source light is at most 1
            c, limit = 1.0, 1.0
        else:
            c = _rolloff_c(self.knee, peak / white)
            top = {"pq": PQ_MAX_NITS, "hlg": peak, "linear": max(HALF_MAX, peak)}[self.transfer]
            limit = self.knee + c * math.log1p((top / white - self.knee) / c)
        # the largest |BT.709 component| rolled-off light within +-limit can give
        reach = limit * (float(np.abs(M_2020_TO_709).sum(axis=1).max()) if wide else 1.0)
        return _Consts(
            to_rel=f32(1 / white),
            from_rel=f32(white),
            knee=f32(self.knee),
            c=f32(c),
            inv_c=f32(1 / c),
            limit=f32(limit),
            enc_limit=f32(1.055 * reach ** (1 / 2.4) - 0.055),
            fwd=M_2020_TO_709.T.astype(f32) if wide else None,
            inv=M_709_TO_2020.T.astype(f32) if wide else None,
            luma=_rgb_to_xyz(self.primaries)[1].astype(f32),
            alpha_rel=f32(peak / white),
            gamma=1.2 + 0.42 * math.log10(peak / 1000.0) if self.transfer == "hlg" else 1.0,
        )

    def to_working(self, rgb: np.ndarray) -> np.ndarray:
        """(..., 3) source values (PQ/HLG full-range code values in [0, 1], scene-linear
        values, or sdr code values) -> float32 working values (a new array; the input is not
        modified). Identity spaces return `rgb` itself."""
        return rgb if self.identity else _blockwise(self._to_block, rgb)

    def from_working(self, rgb: np.ndarray) -> np.ndarray:
        """Exact inverse of `to_working` (a new float32 array). Any finite input is accepted:
        network output in [0, 1] decodes to at most the peak (working 1.0 -> the peak's code
        value), and unclipped working values of the source still invert."""
        return rgb if self.identity else _blockwise(self._from_block, rgb)

    def _to_block(self, x: np.ndarray) -> np.ndarray:
        k = self._k
        if self.transfer == "pq":
            x = _pq_eotf_(x)  # x 10,000 nits
            x *= np.float32(PQ_MAX_NITS) * k.to_rel
            x = _rolloff_(x, k)
        elif self.transfer == "hlg":
            x = _rolloff_(_hlg_to_display_rel_(x, k), k)
        elif self.transfer == "linear":
            if k.to_rel != 1:
                x *= k.to_rel
            x = _signed(_rolloff_, x, k)
        else:
            x = _signed(_srgb_decode_, x)
        if k.fwd is not None:
            x = x @ k.fwd  # on rolled-off light: see the module docstring on precision
        return _signed(_srgb_encode_, x) if self._negatives else _srgb_encode_(x)

    def _from_block(self, x: np.ndarray) -> np.ndarray:
        k = self._k
        lowest = -k.enc_limit if self._negatives else np.float32(0)
        np.clip(x, lowest, k.enc_limit, out=x)  # beyond what any source gives: avoids inf
        x = _signed(_srgb_decode_, x) if self._negatives else _srgb_decode_(x)
        if k.inv is not None:
            x = x @ k.inv
        if self.transfer == "sdr":
            return _signed(_srgb_encode_, x)  # (light within +-1: the clip above)
        if self.transfer == "linear":
            x = _signed(_rolloff_inverse_, x, k)
            if k.from_rel != 1:
                x *= k.from_rel
            return x
        np.maximum(x, 0, out=x)  # PQ/HLG light is never negative
        x = _rolloff_inverse_(x, k)
        if self.transfer == "pq":
            x *= k.from_rel / np.float32(PQ_MAX_NITS)
            return _pq_inverse_eotf_(x)
        return _hlg_from_display_rel_(x, k)

    @property
    def _negatives(self) -> bool:
        """Whether working values can be negative (then curves act as sign(x) * f(|x|))."""
        return self.transfer in ("sdr", "linear") or self.primaries == "bt2020"


def working_space_for(
    color_trc: int, color_primaries: int, *, linear: bool = False, mode: str = "auto"
) -> WorkingSpace:
    """The working space for a source's FFmpeg transfer/primaries tags (as PyAV reports
    them). `linear` is for EXR plates (scene-linear whatever the tags). `mode="off"` feeds
    the raw values to the network (identity). Transfers other than PQ, HLG and linear are
    treated as SDR (their encoding is already display-referred); primaries other than
    BT.2020 as BT.709."""
    if mode not in MODES:
        raise ValueError(f"unknown working-space mode {mode!r} (one of {', '.join(MODES)})")
    if mode == "off":
        return WorkingSpace()
    primaries = "bt2020" if color_primaries == PRI_BT2020 else "bt709"
    if linear or color_trc == TRC_LINEAR:
        transfer = "linear"
    elif color_trc == TRC_SMPTE2084:
        transfer = "pq"
    elif color_trc == TRC_ARIB_STD_B67:
        transfer = "hlg"
    else:
        transfer = "sdr"
    return WorkingSpace(transfer, primaries)


_BLOCK = 32768  # pixels converted at a time: the temporaries stay in cache


def _blockwise(fn: Callable[[np.ndarray], np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """fn over (n, 3) float32 blocks of `rgb` (each a private copy fn may overwrite)."""
    shape = np.shape(rgb)
    if not shape or shape[-1] != 3:
        raise ValueError(f"expected (..., 3) RGB values, got shape {shape}")
    src = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    out = np.empty(src.shape, np.float32)
    for start in range(0, len(src), _BLOCK):
        out[start : start + _BLOCK] = fn(src[start : start + _BLOCK].copy())
    return out.reshape(shape)


# -- curves: float32 (N, 3) or (N,) arrays, modified in place where the name ends in "_" ----


def _signed(fn: Callable[..., np.ndarray], x: np.ndarray, *args: object) -> np.ndarray:
    """sign(x) * fn(|x|) (x itself is kept as the sign source)."""
    y = fn(np.abs(x), *args)
    return np.copysign(y, x, out=y)


def _pow_(a: np.ndarray, p: float) -> np.ndarray:
    """a ** p for a >= 0, in place, as exp(p * ln a): twice as fast as np.power here."""
    with np.errstate(divide="ignore"):  # ln 0 = -inf -> exp(-inf) = 0
        np.log(a, out=a)
    a *= np.float32(p)
    return np.exp(a, out=a)


def _srgb_encode_(a: np.ndarray) -> np.ndarray:
    """sRGB encoding of linear values a >= 0."""
    low = a <= np.float32(_SRGB_T)
    lin = a * np.float32(12.92)
    _pow_(a, 1 / 2.4)
    a *= np.float32(1.055)
    a -= np.float32(0.055)
    np.copyto(a, lin, where=low)
    return a


def _srgb_decode_(v: np.ndarray) -> np.ndarray:
    """Inverse of `_srgb_encode_` for encoded values v >= 0."""
    low = v <= np.float32(_SRGB_T_ENC)
    lin = v * np.float32(1 / 12.92)
    v += np.float32(0.055)
    v *= np.float32(1 / 1.055)
    _pow_(v, 2.4)
    np.copyto(v, lin, where=low)
    return v


def _rolloff_(a: np.ndarray, k: _Consts) -> np.ndarray:
    """Identity below the knee, k + c * ln(1 + (a - k) / c) above (a >= 0, contiguous).
    Only the values above the knee are touched (highlights are usually few). Plain log is
    enough: near the knee only the absolute error (c * eps) matters."""
    flat = a.reshape(-1)
    idx = np.flatnonzero(flat > k.knee)
    if idx.size:
        v = flat[idx]
        v -= k.knee
        v *= k.inv_c
        v += np.float32(1)
        np.log(v, out=v)
        v *= k.c
        v += k.knee
        flat[idx] = v
    return a


def _rolloff_inverse_(y: np.ndarray, k: _Consts) -> np.ndarray:
    """Inverse of `_rolloff_` for y >= 0, with y clamped at the limit first (no inf)."""
    np.minimum(y, k.limit, out=y)
    flat = y.reshape(-1)
    idx = np.flatnonzero(flat > k.knee)
    if idx.size:
        v = flat[idx]
        v -= k.knee
        v *= k.inv_c
        np.exp(v, out=v)
        v -= np.float32(1)
        v *= k.c
        v += k.knee
        flat[idx] = v
    return y


# ST 2084 rewritten around q = p - 1 (p = E^(1/m2)) and w = r - 1 (r = p of the inverse):
# c1 = 1 - (c2 - c3), so p - c1 = K + q and c2 - c3 p = K - c3 q with K = c2 - c3, and the
# values near 1 that float32 would round (p, r, each worth m2 = 78.8 ulps of code value)
# are never formed.
_K = _C2 - _C3
_Q_MIN = math.log(_C1)  # ln(E) / m2 below this gives no light (E < 7.3e-7)
_EXPM1_TAYLOR = [1 / math.factorial(n) for n in range(5, 0, -1)]  # x^5/5! ... x^1/1!


def _pq_eotf_(e: np.ndarray) -> np.ndarray:
    """ST 2084 code values (clamped to >= 0) -> linear light / 10,000 nits."""
    np.maximum(e, np.float32(1e-30), out=e)
    np.log(e, out=e)
    e *= np.float32(1 / _M2)
    # x in [-0.18, 0]: a degree-5 Taylor expm1 is off by < 5e-9 in code value
    np.maximum(e, np.float32(_Q_MIN), out=e)
    q = np.full_like(e, np.float32(_EXPM1_TAYLOR[0]))
    for coeff in _EXPM1_TAYLOR[1:]:
        q *= e
        q += np.float32(coeff)
    q *= e  # q = expm1(x) = p - 1
    num = np.float32(_K) + q
    np.maximum(num, 0, out=num)
    q *= np.float32(-_C3)
    q += np.float32(_K)
    num /= q  # Y^m1
    return _pow_(num, 1 / _M1)


def _pq_inverse_eotf_(y: np.ndarray) -> np.ndarray:
    """Linear light / 10,000 nits (>= 0) -> ST 2084 code values."""
    u = _pow_(y, _M1)
    den = u * np.float32(_C3)
    den += np.float32(1)
    u -= np.float32(1)
    u *= np.float32(_K)
    u /= den  # w = r - 1, in [-K, 0]
    s = u + np.float32(1)  # log1p(w) = log(s) - ((s - 1) - w) / s, s = fl(1 + w)
    err = s - np.float32(1)
    err -= u
    err /= s
    np.log(s, out=s)
    s -= err
    s *= np.float32(_M2)
    return np.exp(s, out=s)


def _hlg_to_display_rel_(e: np.ndarray, k: _Consts) -> np.ndarray:
    """HLG code values (clamped to >= 0) -> display light (BT.2100 OOTF), x reference white."""
    np.maximum(e, 0, out=e)
    low = e <= np.float32(0.5)
    sq = np.square(e)
    sq *= np.float32(1 / 3)
    e -= np.float32(_HC)
    e *= np.float32(1 / _HA)
    np.exp(e, out=e)
    e += np.float32(_HB)
    e *= np.float32(1 / 12)
    np.copyto(e, sq, where=low)  # scene light E in [0, 1]
    ys = e @ k.luma
    np.maximum(ys, np.float32(_HLG_MIN_Y), out=ys)
    _pow_(ys, k.gamma - 1)
    ys *= k.alpha_rel
    e *= ys[:, None]
    return e


def _hlg_from_display_rel_(f: np.ndarray, k: _Consts) -> np.ndarray:
    """Inverse of `_hlg_to_display_rel_` for display light f >= 0."""
    yd = f @ k.luma
    yd *= np.float32(1) / k.alpha_rel  # alpha * Ys^gamma / alpha
    np.maximum(yd, np.float32(_HLG_MIN_Y**k.gamma), out=yd)
    _pow_(yd, (k.gamma - 1) / k.gamma)  # Ys^(gamma - 1)
    yd *= k.alpha_rel
    f /= yd[:, None]  # scene light E
    # E <= 1 for any legal signal; only display colours the OOTF cannot make from one (say a
    # network-painted peak-bright pure red) exceed it: clip them as the encoder would
    np.minimum(f, np.float32(1), out=f)
    low = f <= np.float32(1 / 12)
    sq = f * np.float32(3)
    np.sqrt(sq, out=sq)
    f *= np.float32(12)
    f -= np.float32(_HB)
    np.maximum(f, np.float32(1e-30), out=f)  # only the low branch reaches here
    np.log(f, out=f)
    f *= np.float32(_HA)
    f += np.float32(_HC)
    np.copyto(f, sq, where=low)
    return f
