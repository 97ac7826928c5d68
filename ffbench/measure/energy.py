"""GPU energy over a block of code: NVML's total energy counter read before and after.

`EnergyMeter(device)` reads `nvmlDeviceGetTotalEnergyConsumption` (millijoules since the
driver was loaded; Volta and later) on enter and on exit, after the caller's device sync.
NVML comes from the `pynvml` module (the nvidia-ml-py package) when it is importable; it is
never a hard dependency: without it, off a GPU, or on a GPU that does not report the
counter, the result says why (`unavailable`) and carries no joules.

The counter is the whole board's, every process's work included, and it advances in steps
(NVML updates it a few times a second at most), so an energy per step is only meaningful
over timed steps that last well beyond that; the harness reports it beside step time.
"""

from __future__ import annotations

from dataclasses import dataclass

METHOD = "NVML nvmlDeviceGetTotalEnergyConsumption (mJ) before and after, whole board"


@dataclass(frozen=True)
class Energy:
    """Joules spent by the board over the block, or why there is no figure."""

    joules: float | None
    unavailable: str | None = None
    method: str = METHOD


def _nvml_handle(index: int):
    try:
        import pynvml
    except ImportError:
        return None, None, "pynvml (nvidia-ml-py) is not installed"
    try:
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(index), None
    except pynvml.NVMLError as exc:  # no driver, no such device
        return None, None, f"NVML unavailable: {exc}"


class EnergyMeter:
    """Context manager: the board's energy over a block. `device`: a torch CUDA device (its
    index is the NVML index, as with CUDA_VISIBLE_DEVICES unset) or anything else (no GPU)."""

    def __init__(self, device) -> None:
        self._index = getattr(device, "index", None) or 0
        self._on_gpu = getattr(device, "type", None) == "cuda"
        self._result: Energy | None = None

    def _read(self) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError as exc:  # NVMLError_NotSupported: a board without the counter
            self._why = f"the GPU does not report its energy counter: {exc}"
            return None

    def __enter__(self) -> EnergyMeter:
        self._why = None if self._on_gpu else "not a GPU run"
        self._nvml = self._handle = self._start = None
        if self._on_gpu:
            self._nvml, self._handle, self._why = _nvml_handle(self._index)
        if self._nvml is not None:
            self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read() if self._start is not None else None
        if end is None:
            self._result = Energy(None, self._why or "no energy reading")
        else:
            self._result = Energy((end - self._start) / 1000.0)

    def result(self) -> Energy:
        if self._result is None:
            raise RuntimeError("EnergyMeter.result() is available after the with-block ends")
        return self._result
