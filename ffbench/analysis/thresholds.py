"""Every threshold a claim is decided by, in one place, written before the run.

The report prints each one with the commit that gave it its present value, followed across
moves between files (`changes`, analysis/provenance.py), and flags a verdict whose threshold
was set after its run's code was committed: a threshold moved after the results were seen
is visible. Change a value here and only
here; the claims import these names.
"""

from __future__ import annotations

from pathlib import Path

# -- findings (about the algorithms) ------------------------------------------------------
MEMORY_MARGIN = 0.05  # one side "needs less memory" only when below (1 - 5 %) x the other's bytes
ACCURACY_REL_TOLERANCE = 0.25  # FF's test error within 25 % (relative) of BP's counts as reaching it
MIN_SEEDS = 3  # accuracy comparisons need this many seeds per trainer
# validation accuracy the accuracy runs train to, per (dataset, architecture): one both families reach
TARGET_ACCURACY = {("mnist", "mlp"): 0.97, ("fashion-mnist", "mlp"): 0.85, ("digits", "mlp"): 0.90}
TARGET_ACCURACY_DEFAULT = 0.90  # for a dataset not listed above
ACCURACY_CONFIDENCE = 0.95  # two-sided Welch t-interval of the mean test-error difference FF - BP
EPOCH_OUTLIER_FACTOR = 1.5  # an epoch whose training took > 1.5 x the run's median epoch is flagged
MIN_UNFLAGGED_SHARE = 0.5  # a time to target needs >= half its epochs unflagged (else: not evaluated)
TUNING_TRIALS = 4  # trials per family of the declared tuning budget (the same for FF and BP)
BATCH_MARGIN = 0.05  # a larger batch counts only when more than 5 % larger
ACTIVATION_DOMINATED_RATIO = 4  # a configuration is activation-dominated when batch >= 4 x width
BLACK_BOX_POINTS = 0.5  # FF's mean test accuracy with the black box within 0.5 points of without
FRONTIER_MEMORY_MARGIN = 0.05  # frontier: FF's peak below (1 - 5 %) x the best BP no slower
FRONTIER_TIME_MARGIN = 0.10  # frontier: FF per example below (1 - 10 %) x the fastest BP within its peak
# A step time decides a verdict only when taken by the timing protocol (ffbench.measure.protocol:
# one thread, a default-allocator process, >= MIN_TIMED_STEPS steps) and not flagged: a
# comparison with a flagged or older figure is "not evaluated" (analysis/timing.py).
TIMING_MAX_IQR_RATIO = 0.5  # flagged: interquartile range above 50 % of the median (steps disagree)
TIMING_MAX_LOAD_PER_CORE = 1.0  # flagged: 1-minute load average above 1.0 x the cores (contended)
MIN_TIMED_STEPS = 5  # a time figure of fewer timed steps is flagged: its comparisons are not evaluated

# -- checks of the instrument -------------------------------------------------------------
FLAT_TOLERANCE = 0.01  # FF's saved activations over depth: (max - min) / min
TIME_FLAT_TOLERANCE = 0.01  # FF in time's training transient over T: (max - min) / min
MIN_DEPTH = 2  # the flatness check compares depths >= 2 (depth 1 has no width x width layer)
GROWTH_THRESHOLD = 0.01  # summed-loss FF's transient must grow by more than 1 % over depth
EVAL_REPLICATION_FACTOR = 0.8  # replicated evaluation rise >= 0.8 x classes x the label loop's
WHOLE_RUN_OVER_TRAINING = 1.1  # FF's default evaluation keeps the whole-run peak <= 1.1 x training
ANALYTIC_TOLERANCE_BYTES = 0  # the analytic ledger equals the tracker to the byte

# -- reported beside a verdict, never deciding it -----------------------------------------
ARITHMETIC_FLOOR = 4 / 3  # FF's arithmetic per MLP step over BP's (4 matmul units against 3)
TOY_WIDTH = 128  # a verdict decided only on widths below this is flagged as a toy run
TOY_CONFIGURATIONS = 4  # ... or on fewer configurations (width x depth x batch) than this

NAMES = (
    "MEMORY_MARGIN",
    "ACCURACY_REL_TOLERANCE",
    "MIN_SEEDS",
    "TARGET_ACCURACY",
    "TARGET_ACCURACY_DEFAULT",
    "ACCURACY_CONFIDENCE",
    "EPOCH_OUTLIER_FACTOR",
    "MIN_UNFLAGGED_SHARE",
    "TUNING_TRIALS",
    "BATCH_MARGIN",
    "ACTIVATION_DOMINATED_RATIO",
    "BLACK_BOX_POINTS",
    "FRONTIER_MEMORY_MARGIN",
    "FRONTIER_TIME_MARGIN",
    "TIMING_MAX_IQR_RATIO",
    "TIMING_MAX_LOAD_PER_CORE",
    "FLAT_TOLERANCE",
    "TIME_FLAT_TOLERANCE",
    "MIN_DEPTH",
    "GROWTH_THRESHOLD",
    "EVAL_REPLICATION_FACTOR",
    "WHOLE_RUN_OVER_TRAINING",
    "ANALYTIC_TOLERANCE_BYTES",
    "ARITHMETIC_FLOOR",
    "TOY_WIDTH",
    "TOY_CONFIGURATIONS",
    "MIN_TIMED_STEPS",
)


def target_accuracy(dataset: str, arch: str | None = "mlp") -> float:
    """The validation accuracy runs of `dataset` on architecture `arch` train to."""
    arch = arch if isinstance(arch, str) and arch else "mlp"
    return TARGET_ACCURACY.get((str(dataset), arch), TARGET_ACCURACY_DEFAULT)


def changes() -> dict:
    """Threshold name -> the `provenance.Change` (commit and date) that gave it its present
    value, followed across files and renames of this one; 'uncommitted' or 'unknown'."""
    from .provenance import last_changes

    return last_changes(Path(__file__), list(NAMES))


def revisions() -> dict[str, str]:
    """Threshold name -> 'commit (date)' that gave it its present value (see `changes`)."""
    return {name: str(change) for name, change in changes().items()}
