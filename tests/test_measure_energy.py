"""NVML energy over the timed steps: a figure where the board reports its counter, a reason
where it does not (no GPU, no pynvml, an unsupported counter); never a hard dependency."""

from __future__ import annotations

import sys
import types

import torch

from ffbench.measure import EnergyMeter


def fake_pynvml(readings, supported=True):
    """A stand-in for the nvidia-ml-py module: the counter returns `readings` in turn (mJ)."""
    mod = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def counter(handle):
        if not supported:
            raise NVMLError("Not Supported")
        return readings.pop(0)

    mod.NVMLError = NVMLError
    mod.nvmlInit = lambda: None
    mod.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    mod.nvmlDeviceGetTotalEnergyConsumption = counter
    return mod


def test_energy_is_the_counter_difference_in_joules(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([1_000_000, 1_002_500]))
    with EnergyMeter(torch.device("cuda", 0)) as meter:
        pass
    energy = meter.result()
    assert energy.joules == 2.5 and energy.unavailable is None


def test_a_board_without_the_counter_is_unavailable_not_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], supported=False))
    with EnergyMeter(torch.device("cuda", 0)) as meter:
        pass
    assert meter.result().joules is None
    assert "does not report its energy counter" in meter.result().unavailable


def test_without_pynvml_or_off_a_gpu_there_is_no_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    with EnergyMeter(torch.device("cuda", 0)) as meter:
        pass
    assert meter.result().joules is None and "not installed" in meter.result().unavailable
    with EnergyMeter(torch.device("cpu")) as meter:
        pass
    assert meter.result().joules is None and meter.result().unavailable == "not a GPU run"


def test_the_harness_records_energy_per_step_beside_time_or_why_not():
    from ffbench.measure import Energy
    from ffbench.run.harness import _energy_fields

    assert _energy_fields(Energy(3.0), 3) == {"energy_joules_per_step": 1.0}
    assert _energy_fields(Energy(None, "not a GPU run"), 3) == {"energy_unavailable": "not a GPU run"}
    assert _energy_fields(Energy(3.0), 0) == {"energy_unavailable": "no timed steps"}
