"""Byte sizes: bytes everywhere inside ffbench; IEC units (powers of 1024) only at the edges."""

from __future__ import annotations

import re

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


def parse_size(text: str | int) -> int:
    """'512MiB' -> 536870912. Bare numbers are bytes; KiB/MiB/GiB are powers of 1024,
    kB/MB/GB powers of 1000 (as IEC/SI define them)."""
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match or match.group(2).lower() not in _UNITS:
            raise ConfigError(f"cannot read size {text!r}: use e.g. 512MiB, 8GiB or a byte count")
        value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value <= 0:
        raise ConfigError(f"size must be positive, got {text!r}")
    return value


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
