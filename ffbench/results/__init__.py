"""Results on disk and the tables read from them: ``ffbench.results.load(path)`` and friends.

    store.py      the folder layout, atomic writes, a configuration's identity, the one walker,
                  a results folder being written (its records read once, kept in memory)
    lock.py       one writer per results folder
    rows.py       records -> rows: `load`, `load_phases`, `to_csv`, `register_kind`
    benchjson.py  pytest-benchmark JSON read as records

Below the runs (`ffbench.run` writes here) and the analysis (which reads from here). It
imports no torch.
"""

from .rows import PHASE_COLUMNS, ROW_COLUMNS, load, load_phases, register_kind, to_csv

__all__ = ["PHASE_COLUMNS", "ROW_COLUMNS", "load", "load_phases", "register_kind", "to_csv"]
