"""Phase markers: trainers say *what* they are doing, trackers listen.

A trainer wraps its work in ``with phase("forward", layer=i):``. When no tracker listens
this costs one empty-list check. Trackers register a listener for the duration of a
measurement; trainers never import or know about trackers.

Phase names used by the trainers: "forward", "backward", "optimizer" (and "eval").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

# listener(event, name, layer) with event in {"enter", "exit"}
Listener = Callable[[str, str, int | None], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    _listeners.remove(listener)


@contextmanager
def phase(name: str, layer: int | None = None) -> Iterator[None]:
    if not _listeners:
        yield
        return
    for listener in list(_listeners):
        listener("enter", name, layer)
    try:
        yield
    finally:
        for listener in list(_listeners):
            listener("exit", name, layer)
