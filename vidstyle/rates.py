"""Frame rates as people write them ('24', '23.976', '30000/1001') -> exact fractions.

The one parser for every place a rate is given as text (`vidstyle run --rate`, `vidstyle farm
plan --rate`, a job file's input_rate), so the same words time frames the same way everywhere:
a decimal that spells an NTSC rate (N x 1000/1001, rounded to the places written, two or more)
is that exact fraction, e.g. 23.976 and 23.98 -> 24000/1001, 29.97 -> 30000/1001; any other
number (24, 12.5, 30000/1001) is taken exactly as written.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from vidstyle.errors import ConfigError

#: Nominal rates whose NTSC versions (N x 1000/1001) are written as decimals: 11.988, 14.985,
#: 23.976 (23.98), 29.97, 47.952 (47.95), 59.94, 71.928, 95.904, 119.88, 239.76.
NTSC_NOMINAL = (12, 15, 24, 30, 48, 60, 72, 96, 120, 240)
NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in NTSC_NOMINAL)


def parse_rate(
    text: str | None, option: str = "--rate", path: str | Path | None = None
) -> Fraction | None:
    """'24', '23.976', '30000/1001' -> an exact positive Fraction (None -> None); anything
    else is a ConfigError naming `option` (and `path`, the file it came from, if any)."""
    if text is None:
        return None
    text = str(text).strip()
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate is None or rate <= 0:
        what = f"{option} must be a frame rate like 24, 23.976 or 30000/1001, not {text!r}"
        raise ConfigError(what, path)
    places = _decimal_places(text)
    if places >= 2:  # one place would make 24.0 an NTSC rate (23.976 rounds to it)
        for exact in NTSC_RATES:
            if round(exact, places) == rate:
                return exact
    return rate


def _decimal_places(text: str) -> int:
    """Digits written after the decimal point: '23.976' -> 3; '24', '30000/1001' -> 0."""
    if "/" in text:
        return 0
    exponent = Decimal(text).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


__all__ = ["NTSC_RATES", "parse_rate"]
