"""Optimizer ledgers: the state `torch.optim` keeps and what one `step()` allocates.

single-tensor Adam (default) is modelled op by op (exact). foreach: `_foreach_sqrt` of
all exp_avg_sq of one optimizer at once (s*P temporaries) plus the 4-byte CPU
`torch.tensor(1.0)` step increment. fused: no parameter-sized temporaries. SGD:
momentum buffers (s*|p|, created by `grad.clone()` in the first step, updated in place
after); `momentum=0` keeps no state. foreach/fused/SGD are best effort: derived from
torch/optim source the same way, checked on a few configurations only.

dtype: torch.optim.Adam single-tensor keeps exp_avg/exp_avg_sq as zeros_like(param) and
computes its sqrt and denom temporaries in the parameter's dtype (no float32 master
copy); only the `step` counters are float32.
"""

from __future__ import annotations

from ..config import RunConfig
from .ledger import F32, Ledger, Params


def state_init(L: Ledger, cfg: RunConfig, params: Params, s: int) -> None:
    """Lazy state creation in the first `step()`.

    Adam `_init_group`, for every parameter with a grad, before any update:
    `state["step"] = torch.tensor(0.0)` (0-dim float32, 4 B; `torch.zeros(())` when
    fused -- also 4 B), `exp_avg = zeros_like(p)`, `exp_avg_sq = zeros_like(p)`.
    SGD with momentum creates `buf = grad.detach().clone()` inside the update loop
    (see `step`), nothing here.
    """
    if cfg.optimizer != "adam":
        return
    for name, n in params:
        L.alloc(f"step:{name}", F32, "optimizer_state", "Adam state init (step)")
        L.alloc(f"exp_avg:{name}", n * s, "optimizer_state", f"Adam state init exp_avg({name})")
        L.alloc(f"exp_avg_sq:{name}", n * s, "optimizer_state", f"Adam state init exp_avg_sq({name})")


def state_steady(L: Ledger, cfg: RunConfig, params: Params, s: int) -> None:
    """Optimizer state alive between steps (see `state_init`)."""
    if cfg.optimizer == "adam":
        state_init(L, cfg, params, s)
    elif cfg.momentum != 0:
        for name, n in params:
            L.alloc(f"momentum_buffer:{name}", n * s, "optimizer_state")


def step(L: Ledger, cfg: RunConfig, params: Params, s: int, first: bool, tag: str = "") -> None:
    """`opt.step()` then `opt.zero_grad(set_to_none=True)`; all grads of `params` alive."""
    if first:
        state_init(L, cfg, params, s)
    if cfg.optimizer == "adam":
        if cfg.optimizer_impl == "single-tensor":
            _adam_single_tensor(L, params, s, tag)
        elif cfg.optimizer_impl == "foreach":
            _adam_foreach(L, params, s, tag)
        # fused: _fused_adam_ updates in place, no parameter-sized temporaries.
    elif cfg.momentum != 0 and first:
        # _single_tensor_sgd / foreach: buf = clone(grad) on the first step -> state
        for name, n in params:
            L.alloc(f"momentum_buffer:{name}", n * s, "optimizer_state", "SGD buf = grad.clone()")
    # steady SGD: buf.mul_().add_(grad); param.add_(buf): in place, no temporaries.
    # zero_grad(set_to_none=True): every gradient of this optimizer dies.
    L.free(*[f"grad:{name}" for name, _ in params])


def _adam_single_tensor(L: Ledger, params: Params, s: int, tag: str) -> None:
    """_single_tensor_adam, per parameter p_i (non-capturable branch):
      step_t += 1; exp_avg.lerp_(); exp_avg_sq.mul_().addcmul_()   (in place)
      denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
          -> sqrt: s|p_i|, div: s|p_i| (both alive), sqrt dies, add_ in place;
             rebinding `denom` only now frees the previous parameter's denom
      param.addcdiv_(exp_avg, denom)                                  (in place)
    The last denom dies when the function returns."""
    prev = None
    for name, n in params:
        sq = L.alloc(f"sqrt{tag}:{name}", n * s, "other", f"Adam exp_avg_sq.sqrt() ({name})")
        dn = L.alloc(f"denom{tag}:{name}", n * s, "other", f"Adam sqrt/bias_correction2_sqrt ({name})")
        L.free(sq)
        if prev:
            L.free(prev)
        prev = dn
    if prev:
        L.free(prev)


def _adam_foreach(L: Ledger, params: Params, s: int, tag: str) -> None:
    """_multi_tensor_adam: CPU steps are bumped with torch.tensor(1.0) (4 B, lifted);
    exp_avg_sq_sqrt = _foreach_sqrt(exp_avg_sqs): one s|p| tensor per parameter, alive
    together; every later op is in place."""
    one = L.alloc(L.tmp(), F32, "other", "Adam foreach torch.tensor(1.0)")
    L.free(one)
    names = [L.alloc(f"fsqrt{tag}:{name}", n * s, "other", "Adam _foreach_sqrt") for name, n in params]
    L.free(*names)


def host_scalars(cfg: RunConfig, groups: list[Params]) -> int:
    """Adam's `step` counters that live on the host on a CUDA run (not fused: torch keeps a
    non-capturable step on the CPU): one per parameter; none for SGD."""
    if cfg.optimizer != "adam" or cfg.optimizer_impl == "fused":
        return 0
    return sum(len(ps) for ps in groups)


def micro_schedule(
    L: Ledger, cfg: RunConfig, groups: list[Params], s: int, first: bool, sizes: list[int], start, layer
) -> None:
    """The micro-batched FF trainers' order of work (`--ff-micro-schedule`): `start(i)` is
    micro-batch i's input to the first layer, `layer(j, i, inp)` runs layer j on it and returns
    its outputs. layer-major: layer j over every micro-batch (each one's outputs kept), then
    layer j's step; micro-batch-major: each micro-batch through every layer, then every
    layer's step."""

    def step_layer(j: int) -> None:
        L.phase = f"optimizer (layer {j + 1})"
        step(L, cfg, groups[j], s, first, tag=str(j))

    depth = len(groups)
    if cfg.ff_micro_schedule == "layer-major":
        inputs: list = [None] * len(sizes)
        for j in range(depth):
            for i in range(len(sizes)):
                inputs[i] = layer(j, i, start(i) if j == 0 else inputs[i])
            step_layer(j)
        return
    for i in range(len(sizes)):
        h = start(i)
        for j in range(depth):
            h = layer(j, i, h)
    for j in range(depth):
        step_layer(j)


def micro_sizes(batch: int, micro: int) -> list[int]:
    """Rows of each micro-batch, the last one possibly shorter (the trainers' slices)."""
    return [min(micro, batch - i) for i in range(0, batch, micro)]
