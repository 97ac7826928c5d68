"""Public entry point for results: ``ffbench.results.load(path)`` and friends.

The implementation lives in :mod:`ffbench.analysis.results`; this module keeps the documented
import path. It imports no torch.
"""

from .analysis.results import load, load_phases, register_kind, to_csv

__all__ = ["load", "load_phases", "register_kind", "to_csv"]
