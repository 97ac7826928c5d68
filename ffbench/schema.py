"""Names shared by the trackers, the analytic model, records and tables (no torch here).

Bytes and seconds everywhere; MiB (2**20 bytes) only in printed output and figures.
"""

from __future__ import annotations

# The tensor-level breakdown's categories, in display order (see measure/tensors.py for
# how a storage is classified).
CATEGORIES = ("parameters", "gradients", "optimizer_state", "activations", "inputs", "other")

# Tensor-level figures are measured on three occasions: the steady-state step, the first
# step (optimizer state is created lazily inside it) and one evaluation chunk.
TENSOR_PREFIXES = ("tensor", "tensor_first_step", "tensor_eval")


# What happened to a configuration: a record's `status` (the meanings in run/statuses.py).
STATUSES = ("ok", "oom", "timeout", "killed", "error", "partial")
RESULTS = ("ok", "oom", "timeout")  # what the configuration did; never re-measured
ENVIRONMENT_FAULT = "environment"  # the `fault` of an error the machine caused, not the configuration


def needs_measuring(record: dict | None, retry_errors: bool = False) -> bool:
    """Whether a resume measures this configuration (again): no record, `killed`, an
    environment fault (and, with `retry_errors`, every other error)."""
    if record is None:
        return True
    status = record.get("status")
    if status == "killed" or record.get("fault") == ENVIRONMENT_FAULT:
        return True
    return status not in RESULTS and (retry_errors or status not in ("error",))
