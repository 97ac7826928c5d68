"""The predicted CUDA allocator peak (ffbench/cuda_allocator.py): the 512 B rounding rule on
constructed timelines, the tracker's rounded peak on real storages, the workspace rule, and
the analytic model's prediction equal to the tracker's, byte for byte, for every modelled
trainer at small sizes (MLP and conv)."""

from __future__ import annotations

import gc

import pytest
import torch

from ffbench import cuda_allocator as ca
from ffbench.config import RunConfig
from ffbench.data import load_dataset
from ffbench.measure import TensorTracker
from ffbench.model import predict
from ffbench.run.harness import HarnessSettings, measure_memory, prepare

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_three_storages_alive_together_round_to_512_byte_blocks():
    # 1 -> 512, 513 -> 1,024, 1,000,000 -> 1,000,448
    lifetimes = [(1, 0, 3), (513, 1, 3), (1_000_000, 2, 3)]
    assert ca.rounded_peak(lifetimes) == 512 + 1_024 + 1_000_448 == 1_001_984


def test_storages_that_do_not_overlap_in_time_do_not_add():
    # each dies at the instant the next is born (deaths first): the peak is the largest alone
    assert ca.rounded_peak([(1, 0, 1), (513, 1, 2), (1_000_000, 2, 3)]) == 1_000_448
    # two overlap, the third comes after both died
    assert ca.rounded_peak([(600, 0, 2), (700, 1, 3), (100, 3, 4)]) == 1_024 + 1_024


def test_round_block_edges():
    assert [ca.round_block(n) for n in (0, 1, 512, 513, 1024, 1025)] == [0, 512, 512, 1024, 1024, 1536]


def test_the_tracker_rounds_each_live_storage():
    with TensorTracker() as t:
        a = torch.empty(1, dtype=torch.uint8)
        b = torch.empty(513, dtype=torch.uint8)
        c = torch.empty(1_000_000, dtype=torch.uint8)
        del a, b, c
        d = torch.empty(4096, dtype=torch.uint8)
        del d
    r = t.result()
    assert r.peak_bytes == 1 + 513 + 1_000_000  # tensor-level figure unchanged
    assert r.rounded_peak_bytes == 1_001_984


def test_the_tracker_rounds_the_peak_instant_not_the_unrounded_one():
    # 100 one-byte storages (51,200 B rounded) then one 1,000 B storage alone (1,024 B):
    # the unrounded peak is the second instant, the rounded one the first.
    with TensorTracker() as t:
        small = [torch.empty(1, dtype=torch.uint8) for _ in range(100)]
        del small
        big = torch.empty(1_000, dtype=torch.uint8)
        del big
    r = t.result()
    assert r.peak_bytes == 1_000
    assert r.rounded_peak_bytes == 100 * 512


def test_workspace_rule():
    hopper, lt = ca.workspace_sizes((9, 0), env={})
    assert (hopper, lt) == (32 * 2**20, 2**20)
    assert ca.workspace_sizes((8, 0), env={}) == (4096 * 1024 * 2 + 16 * 1024 * 8, 2**20)
    assert ca.workspace_sizes((9, 0), env={"CUBLAS_WORKSPACE_CONFIG": ":4096:8"})[0] == 32 * 2**20
    assert ca.workspace_sizes((9, 0), env={"CUBLAS_WORKSPACE_CONFIG": ":16:8"}) == (128 * 1024, 128 * 1024)
    assert ca.workspace_sizes((9, 0), env={"TORCH_CUBLASLT_UNIFIED_WORKSPACE": "1"}) == (hopper, 0)
    assert ca.step_workspace_bytes("bp", (9, 0), env={}) == 2 * hopper + lt
    assert ca.step_workspace_bytes("bp-checkpoint", (9, 0), env={}) == 2 * hopper + 2 * lt


def test_prediction_subtracts_host_scalars_and_adds_workspaces():
    assert ca.predicted_allocated_bytes(10 * 512, 3, 1000) == 7 * 512 + 1000


_DATA = {}


def _data(features: int):
    if features not in _DATA:
        _DATA[features] = load_dataset(
            "synthetic", val_size=0, synthetic_features=features, synthetic_train=256, synthetic_test=128
        )
    return _DATA[features]


MLP = ("bp", "bp-checkpoint", "bp-accum", "bp-inbackward", "bp-local", "ff", "ff-frugal", "ff-summed")
CASES = [dict(trainer=t, depth=d, width=64, batch_size=32) for t in MLP for d in (1, 3)] + [
    dict(trainer="bp", depth=2, width=48, batch_size=24, optimizer="sgd", momentum=0.9),
    dict(trainer="ff", depth=2, width=48, batch_size=24, optimizer_impl="foreach"),
    dict(trainer="bp", depth=2, width=48, batch_size=24, optimizer_impl="fused"),
    dict(trainer="ff-frugal", depth=2, width=40, batch_size=16, dtype="bfloat16"),
    *(
        dict(
            trainer=t, arch="conv", depth=2, channels="8", batch_size=8, image_shape="1x28x28", eval_chunk=64
        )
        for t in ("bp", "bp-checkpoint", "bp-accum", "bp-inbackward", "bp-local")
    ),
]


@pytest.mark.parametrize("spec", CASES, ids=["-".join(f"{v}" for v in c.values()) for c in CASES])
def test_analytic_prediction_equals_the_trackers_to_the_byte(spec):
    cfg = RunConfig(dataset="synthetic", threads=1, **spec)
    data = _data(784)
    gc.collect()
    memory = measure_memory(prepare(cfg, dataset=data), HarnessSettings(timeline=False, evaluate=False))
    fields = memory.fields()
    assert fields["tensor_peak_bytes"] == fields["analytic_peak_bytes"]  # the ledger is exact
    measured = fields["cuda_allocated_predicted_bytes"]
    assert measured == fields["analytic_cuda_allocated_predicted_bytes"]
    assert measured == predict(cfg, 784, 10).cuda_allocated_predicted_bytes
    # tens of MiB of cuBLAS workspaces on top of a small net's rounded tensors
    assert measured > ca.step_workspace_bytes(cfg.trainer) > fields["tensor_peak_bytes"]
