"""Who holds the peak: a record's largest storages at the peak, and two records' peaks
attributed to allocation sites (`ffbench diff A B`).

A record measured with allocation sites (``ffbench measure --sites N``, ``ffbench.track(...,
sites=N)``) holds ``peak_holders`` (the N largest storages alive at the steady step's peak:
bytes, category, site, where) and ``peak_sites`` (the peak's bytes summed per allocation
site). Bytes are exact; human units only in the printed lines (MiB = 2^20 B).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..units import format_bytes

SITES_HINT = "measure it with allocation sites (ffbench measure --sites N, or ffbench.track(..., sites=N))"


def holder_lines(record: dict) -> list[str]:
    """The largest storages at the peak, one line each (empty when sites were not recorded)."""
    holders = record.get("peak_holders")
    if not holders:
        return []
    lines = [f"  largest storages at the peak ({len(holders)}), allocated at:"]
    for h in holders:
        where = f" in {h['where']}" if h.get("where") else ""
        lines.append(f"    {format_bytes(h['bytes']):>11}  {h['category']:<15} {h['site']}{where}")
    return lines


@dataclass(frozen=True)
class SiteDelta:
    site: str
    bytes_a: int
    bytes_b: int

    @property
    def delta(self) -> int:
        return self.bytes_b - self.bytes_a


def _sites(record: dict, label: str) -> dict[str, int]:
    sites = record.get("peak_sites")
    if not isinstance(sites, dict):
        raise ConfigError(f"{label}: the record holds no allocation sites; {SITES_HINT}")
    return {str(k): int(v) for k, v in sites.items()}


def _peak(record: dict, label: str) -> int:
    try:
        return int(record["metrics"]["tensor_peak_bytes"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{label}: not a measure record with a tensor-level peak") from None


def site_deltas(a: dict, b: dict, label_a: str = "A", label_b: str = "B") -> list[SiteDelta]:
    """Every allocation site whose bytes at the peak differ between records a and b, the
    largest difference first. Their deltas sum to the difference of the two peaks."""
    sa, sb = _sites(a, label_a), _sites(b, label_b)
    out = [SiteDelta(s, sa.get(s, 0), sb.get(s, 0)) for s in dict.fromkeys([*sa, *sb])]
    out = [d for d in out if d.delta != 0]
    return sorted(out, key=lambda d: (-abs(d.delta), d.site))


def diff_lines(a: dict, b: dict, label_a: str, label_b: str, top: int = 20) -> list[str]:
    """What `ffbench diff` prints: the peaks, their difference, then the sites that differ."""
    pa, pb = _peak(a, label_a), _peak(b, label_b)
    deltas = site_deltas(a, b, label_a, label_b)
    lines = [
        f"peak A {format_bytes(pa)} ({pa:,} B): {label_a}",
        f"peak B {format_bytes(pb)} ({pb:,} B): {label_b}",
        f"B - A  {pb - pa:+,} B; {len(deltas)} allocation site(s) hold different bytes at the peak:",
        f"  {'A (B)':>14}{'B (B)':>14}{'B - A (B)':>16}  site",
    ]
    for d in deltas[:top]:
        lines.append(f"  {d.bytes_a:>14,}{d.bytes_b:>14,}{d.delta:>+16,}  {d.site}")
    if len(deltas) > top:
        rest = sum(d.delta for d in deltas[top:])
        lines.append(f"  {'':>28}{rest:>+16,}  ({len(deltas) - top} more sites)")
    return lines
