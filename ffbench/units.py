"""Byte sizes: bytes everywhere inside ffbench; IEC units (powers of 1024) only at the edges."""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import ConfigError

KiB = 2**10
MiB = 2**20
GiB = 2**30

_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kib": KiB,
    "kb": 1000,
    "m": MiB,
    "mib": MiB,
    "mb": 1000**2,
    "g": GiB,
    "gib": GiB,
    "gb": 1000**3,
    "t": 2**40,
    "tib": 2**40,
    "tb": 1000**4,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")


MAX_SIZE = 2**60  # 1 EiB: larger budgets are typos, and byte counts must fit int64 columns


def parse_size(text: str | int) -> int:
    """'512MiB' -> 536870912. Bare numbers are bytes; KiB/MiB/GiB are powers of 1024,
    kB/MB/GB powers of 1000 (as IEC/SI define them). Positive, at most MAX_SIZE (1 EiB);
    exact for any number of digits (no float rounding or overflow)."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise ConfigError(f"cannot read size {text!r}: use e.g. 512MiB, 8GiB or a byte count")
    if isinstance(text, int):
        value = Fraction(text)
    else:
        match = _SIZE.match(text)
        if not match or match.group(2).lower() not in _UNITS or len(match.group(1)) > 4000:
            raise ConfigError(f"cannot read size {text[:60]!r}: use e.g. 512MiB, 8GiB or a byte count")
        whole = match.group(1).split(".")[0].lstrip("0")
        value = Fraction(match.group(1)) * _UNITS[match.group(2).lower()] if len(whole) < 30 else None
    shown = text if isinstance(text, int) or len(text) <= 60 else text[:60] + "..."
    if value is None or value > MAX_SIZE:
        raise ConfigError(f"size {shown!r} is larger than {MAX_SIZE // 2**60} EiB")
    if int(value) <= 0:
        raise ConfigError(f"size must be positive, got {shown!r}")
    return int(value)


def mib(n_bytes: float) -> float:
    """Bytes -> MiB (2**20 bytes), for display only."""
    return n_bytes / MiB


def format_bytes(n_bytes: float) -> str:
    """Human-readable IEC size, e.g. '241.05 MiB'."""
    n = float(n_bytes)
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"
