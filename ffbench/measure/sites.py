"""Allocation sites: where each storage a TensorTracker sees was allocated.

A site is the compact Python stack at the allocating op: the innermost ``FRAMES`` frames
outside torch, ffbench's measuring code and harness (``measure/``, ``run/``, ``tracking.py``)
and the standard library's ``contextlib``,
as ``file:line`` (the file as its last two path parts), innermost first, joined by " < ".
``where`` says what was running: the module whose ``forward`` was on the stack (its
qualified name when the model's names are known, else its class), else the innermost
phase marker (``backward[2]``: backward of layer 2).

Recording costs a stack walk per new storage, so the tracker does it only when asked
(``sites=N``). Nothing here allocates tensors: byte figures are the same with or without.
"""

from __future__ import annotations

import heapq
import os
import sys
from typing import Any

import torch

FRAMES = 3
BEFORE = "(before the block"


def before(category: str) -> str:
    """The site of a storage alive before the block, by what it is: '(before the block: gradients)'."""
    return f"{BEFORE}: {category})"


_HERE = os.path.dirname(os.path.abspath(__file__))
_SKIP = (  # torch, the measuring code and the harness that calls the step
    os.path.dirname(os.path.abspath(torch.__file__)) + os.sep,
    _HERE + os.sep,
    os.path.join(os.path.dirname(_HERE), "run") + os.sep,
    os.path.join(os.path.dirname(_HERE), "tracking.py"),
)


def _skipped(filename: str, cache: dict[str, bool] = {}) -> bool:  # noqa: B006 - a cache
    hit = cache.get(filename)
    if hit is None:
        path = os.path.abspath(filename)
        hit = path.startswith(_SKIP) or os.path.basename(path) == "contextlib.py" or filename.startswith("<")
        cache[filename] = hit
    return hit


def _short(filename: str) -> str:
    parts = filename.replace(os.sep, "/").split("/")
    return "/".join(parts[-2:])


def stack_site(frames: int = FRAMES) -> str:
    """The compact allocation stack of the caller: 'file:line < file:line < ...'."""
    out: list[str] = []
    f = sys._getframe(1)
    while f is not None and len(out) < frames:
        code = f.f_code
        if not _skipped(code.co_filename):
            out.append(f"{_short(code.co_filename)}:{f.f_lineno}")
        f = f.f_back
    return " < ".join(out) or "(no Python frame outside torch)"


class SiteRecorder:
    """Sites of live storages (by the tracker's storage key) and the module stack."""

    def __init__(self, module_names: dict[int, str] | None = None) -> None:
        self._names = module_names or {}
        self._modules: list[Any] = []
        self._site: dict[int, tuple[str, str]] = {}
        self._handles: list = []

    def start(self) -> None:
        from torch.nn.modules import module as nn_module

        self._site = {}
        self._modules = []
        self._handles = [
            nn_module.register_module_forward_pre_hook(self._enter_module),
            nn_module.register_module_forward_hook(self._exit_module, always_call=True),
        ]

    def stop(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._modules = []

    def _enter_module(self, module, args) -> None:
        self._modules.append(module)

    def _exit_module(self, module, args, output) -> None:
        if self._modules and self._modules[-1] is module:
            self._modules.pop()

    def where(self, open_phase) -> str:
        if self._modules:
            m = self._modules[-1]
            return self._names.get(id(m)) or type(m).__name__
        if open_phase is not None:
            layer = "" if open_phase.layer is None else f"[{open_phase.layer}]"
            return f"{open_phase.name}{layer}"
        return ""

    def allocated(self, key: int, open_phase) -> None:
        self._site[key] = (stack_site(), self.where(open_phase))

    def freed(self, key: int) -> None:
        self._site.pop(key, None)

    def at_peak(
        self, live: dict[int, list], categories: dict[int, str], top: int
    ) -> tuple[list[dict], dict[str, int]]:
        """(the `top` largest live storages, bytes per site) of the live set `live`."""
        per_site: dict[str, int] = {}
        for key, rec in live.items():
            site = self._site.get(key, (None,))[0] or before(categories.get(key, "other"))
            per_site[site] = per_site.get(site, 0) + rec[1]
        largest = heapq.nlargest(top, live.items(), key=lambda item: item[1][1])
        holders = []
        for key, rec in largest:
            site, where = self._site.get(key, (before(categories.get(key, "other")), ""))
            holders.append(
                {"bytes": rec[1], "category": categories.get(key, "other"), "site": site, "where": where}
            )
        return holders, dict(sorted(per_site.items(), key=lambda kv: -kv[1]))
