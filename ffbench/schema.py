"""Names shared by the trackers, the analytic model, records and tables (no torch here).

Bytes and seconds everywhere; MiB (2**20 bytes) only in printed output and figures.
"""

from __future__ import annotations

# The tensor-level breakdown's categories, in display order (see measure/tensors.py for
# how a storage is classified).
CATEGORIES = ("parameters", "gradients", "optimizer_state", "activations", "inputs", "other")

# The built-in trainers in display order (figures, tables); a plugin's trainer comes after.
TRAINER_ORDER = (
    "bp",
    "bp-checkpoint",
    "ff",
    "ff-frugal",
    "ff-summed",
    "bp-accum",
    "bp-inbackward",
    "bp-local",
)

# Trainers outside the main MLP grid: backprop with a straight-through estimator at the black
# box (needs --black-box) and the recurrent network's cross-entropy read-out (--arch recurrent).
MORE_TRAINERS = ("bp-ste", "bp-ce")

# Tensor-level figures are measured on three occasions: the steady-state step, the first
# step (optimizer state is created lazily inside it) and one evaluation chunk.
TENSOR_PREFIXES = ("tensor", "tensor_first_step", "tensor_eval")


def tensor_columns(prefix: str) -> tuple[str, ...]:
    """The columns one TensorTracker result fills under `prefix` (see run/harness.py)."""
    return (
        f"{prefix}_peak_bytes",
        f"{prefix}_start_bytes",
        f"{prefix}_transient_bytes",
        f"{prefix}_saved_activations_bytes",
        *(f"{prefix}_peak_{c}_bytes" for c in CATEGORIES),
    )
