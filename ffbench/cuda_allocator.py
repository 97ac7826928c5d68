"""PyTorch's CUDA caching allocator, as a rule: a predicted `max_memory_allocated`.

This is a *prediction* of the allocator's allocated peak over a training step, made
from tensor-level sizes (the tracker's storages or the analytic model's ledger); it
runs on CPU and never touches a GPU. It is stated for torch 2.11 (the lent GPU
machines: torch 2.11, Python 3.12, H100/H200 = compute capability 9.0) and derived from
pytorch/pytorch's sources of that line: `c10/cuda/CUDACachingAllocator.cpp`
(`kMinBlockSize`, `kSmallSize`, `round_size`, `NativeCachingAllocator::allocate`; read
at commit eb42ad6e) and `aten/src/ATen/cuda/CublasHandlePool.cpp`
(`parseChosenWorkspaceSize`, `getCUDABlasLtWorkspaceSize`, `setWorkspaceForHandle`,
`getCUDABlasLtWorkspace`; read at commit 26a39059). The device check
(`ffbench.run.device_check`) compares it with `max_memory_allocated` on the GPU.

The rule
--------
1. Rounding. `round_size` rounds every request up to a multiple of `kMinBlockSize`
   = 512 B (an empty storage takes no block: `allocate(0)` skips `malloc`), and
   `max_memory_allocated` counts the rounded size of each live block. (With the default settings; the
   `roundup_power2_divisions` option of PYTORCH_CUDA_ALLOC_CONF rounds larger.)
   The predicted tensor part is the peak over the step of the sum of
   `round_block(nbytes)` of every live storage -- a different instant from the
   unrounded peak when many small storages are alive elsewhere.
2. Workspaces. cuBLAS takes its workspace from the same allocator, one per (cuBLAS
   handle, stream); handles are per thread. Its size is CUBLAS_WORKSPACE_CONFIG
   (`:SIZE_KiB:COUNT` pairs summed) or, unset, 32 MiB on compute capability exactly
   9.0 (Hopper) and 4096 KiB x 2 + 16 KiB x 8 = 8,519,680 B on every other GPU. cuBLASLt (the
   `addmm` with a bias of `nn.Linear`'s forward) has its own workspace per (handle,
   stream) unless TORCH_CUBLASLT_UNIFIED_WORKSPACE=1: CUBLASLT_WORKSPACE_SIZE KiB
   (default 1024), capped at the cuBLAS size. A training step runs its forward in the
   calling thread and, on CUDA, its backward in the autograd engine's device thread:
   so (forward thread: cuBLAS + cuBLASLt) + (backward thread: cuBLAS, plus cuBLASLt
   when the backward recomputes a forward: bp-checkpoint). The workspaces are
   allocated once and held, so they are alive throughout every step after the first.
   (The thread count is the least certain part: the device check lists a difference
   of whole workspaces as such.)
3. Host scalars. `torch.optim.Adam` (not fused, not capturable) keeps its `step`
   counters on the CPU even for CUDA parameters: they are tensor-level bytes but not
   allocator bytes, so they are left out.

What it is not
--------------
* A lower bound where the allocator hands out a block larger than asked: a cached
  large-pool block is not split when the remainder would be at most 1 MiB (`kSmallSize`
  in `should_split`), and blocks above `max_split_size` are never split; such a block
  counts whole in `max_memory_allocated`. cuDNN's convolution workspaces
  (--arch conv) come from the allocator too and are not predicted.
* Reserved memory (segments, caching, fragmentation) is not predicted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

MIN_BLOCK = 512  # kMinBlockSize: every block is a multiple of 512 B
KiB = 1024
MiB = 1 << 20
HOPPER_CUBLAS_WORKSPACE = 32 * MiB  # compute capability 9.0, CUBLAS_WORKSPACE_CONFIG unset
DEFAULT_CUBLAS_WORKSPACE = 4096 * KiB * 2 + 16 * KiB * 8  # ":4096:2:16:8", every other GPU
DEFAULT_CUBLASLT_WORKSPACE = 1024 * KiB  # CUBLASLT_WORKSPACE_SIZE unset
ASSUMED_CAPABILITY = (9, 0)  # predictions made off a GPU assume the lent H100/H200
SOURCE = (
    "pytorch/pytorch c10/cuda/CUDACachingAllocator.cpp (kMinBlockSize, round_size) and "
    "aten/src/ATen/cuda/CublasHandlePool.cpp (workspace sizes), torch 2.11"
)


def round_block(nbytes: int) -> int:
    """The block size the caching allocator hands out for a request of `nbytes` (0: none)."""
    return -(-int(nbytes) // MIN_BLOCK) * MIN_BLOCK


class RoundedLive:
    """Running sum of 512-rounded live bytes and its peak: `add` at a storage's birth,
    `remove` at its death (a resize is a remove then an add)."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0

    def add(self, nbytes: int) -> None:
        self.live += round_block(nbytes)
        if self.live > self.peak:
            self.peak = self.live

    def remove(self, nbytes: int) -> None:
        self.live -= round_block(nbytes)

    def backdate(self, nbytes: int) -> None:
        """A storage found late that was alive all along: it raises the past peak too."""
        self.live += round_block(nbytes)
        self.peak += round_block(nbytes)


def rounded_peak(lifetimes: Iterable[tuple[int, float, float]]) -> int:
    """Peak of the 512-rounded live bytes of storages given as (nbytes, birth, death):
    alive from `birth` up to (not including) `death`; at equal instants deaths come first."""
    events = []
    for nbytes, birth, death in lifetimes:
        events.append((birth, 1, nbytes))
        events.append((death, 0, nbytes))
    acc = RoundedLive()
    for _, is_birth, nbytes in sorted(events):
        acc.add(nbytes) if is_birth else acc.remove(nbytes)
    return acc.peak


def _parse_cublas_config(value: str) -> int | None:
    pairs = re.findall(r":([0-9]+):([0-9]+)", value)
    return sum(int(size) * KiB * int(count) for size, count in pairs) if pairs else None


def workspace_sizes(
    capability: tuple[int, int] = ASSUMED_CAPABILITY, env: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """(cuBLAS, cuBLASLt) workspace bytes of one (handle, stream) on a GPU of `capability`,
    from the environment's CUBLAS_WORKSPACE_CONFIG / CUBLASLT_WORKSPACE_SIZE /
    TORCH_CUBLASLT_UNIFIED_WORKSPACE (cuBLASLt 0 when unified: it borrows cuBLAS's)."""
    env = os.environ if env is None else env
    default = HOPPER_CUBLAS_WORKSPACE if tuple(capability) == (9, 0) else DEFAULT_CUBLAS_WORKSPACE
    cublas = _parse_cublas_config(env.get("CUBLAS_WORKSPACE_CONFIG", "")) or default
    if env.get("TORCH_CUBLASLT_UNIFIED_WORKSPACE", "").strip().lower() in ("1", "true", "on", "yes"):
        return cublas, 0
    lt_kib = env.get("CUBLASLT_WORKSPACE_SIZE", "")
    lt = int(lt_kib) * KiB if lt_kib.strip().isdigit() else DEFAULT_CUBLASLT_WORKSPACE
    return cublas, min(lt, cublas)


def step_workspace_bytes(
    trainer: str, capability: tuple[int, int] = ASSUMED_CAPABILITY, env: Mapping[str, str] | None = None
) -> int:
    """Workspaces held during a training step of `trainer` (rule 2 of the module docstring):
    forward thread cuBLAS + cuBLASLt, backward thread cuBLAS (+ cuBLASLt for bp-checkpoint)."""
    cublas, lt = workspace_sizes(capability, env)
    recompute = lt if trainer == "bp-checkpoint" else 0
    return (cublas + lt) + (cublas + recompute)


def host_scalar_count(optimizers: Iterable) -> int:
    """Rule 3 on live torch optimizers: `step` entries of their state in param groups that
    are neither fused nor capturable (torch keeps those on the host on a CUDA run)."""
    count = 0
    for opt in optimizers:
        for group in opt.param_groups:
            if group.get("fused") or group.get("capturable"):
                continue
            count += sum(1 for p in group["params"] if "step" in opt.state.get(p, {}))
    return count


def device_capability(device) -> tuple[int, int]:
    """The compute capability the workspace rule uses: the GPU's on a CUDA device, else
    the lent H100/H200's (9.0): off a GPU the figure predicts for that machine."""
    if getattr(device, "type", None) == "cuda":
        import torch

        return tuple(torch.cuda.get_device_capability(device))
    return ASSUMED_CAPABILITY


def predicted_allocated_bytes(rounded_peak_bytes: int, host_scalars: int, workspace_bytes: int) -> int:
    """The predicted allocated peak: rounded tensor peak, less the host-resident scalars
    alive throughout the step (each one 512 B in the rounded sum), plus the workspaces."""
    return rounded_peak_bytes - host_scalars * MIN_BLOCK + workspace_bytes
