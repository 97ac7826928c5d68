"""Every threshold a claim is decided by, in one place, written before the run.

The report prints each one with the git revision that last changed its line (`revisions`),
so a threshold moved after the results were seen is visible. Change a value here and only
here; the claims import these names.
"""

from __future__ import annotations

import subprocess
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
# The two frontier claims decide nothing until step times follow the timing protocol (one
# thread, a timing process apart from the RSS one, >= 5 timed steps, median and IQR): they
# are computed and shown, their verdict stays "not evaluated". Flip to True when it lands.
TIMING_PROTOCOL_LANDED = False

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
MIN_TIMED_STEPS = 5  # a time verdict on medians of fewer timed steps is flagged as under-sampled

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
    "TIMING_PROTOCOL_LANDED",
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


def revisions() -> dict[str, str]:
    """Threshold name -> the short commit that last changed its line ('uncommitted' for a
    line changed in the working tree, 'unknown' outside a git checkout)."""
    path = Path(__file__)
    lines = path.read_text().splitlines()
    found = {name: i + 1 for i, line in enumerate(lines) for name in NAMES if line.startswith(f"{name} =")}
    out = dict.fromkeys(NAMES, "unknown")
    for name, lineno in found.items():
        try:
            proc = subprocess.run(
                ["git", "blame", "--porcelain", "-L", f"{lineno},{lineno}", path.name],
                cwd=path.parent,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if proc.returncode == 0 and proc.stdout:
            sha = proc.stdout.split()[0]
            out[name] = "uncommitted" if set(sha) == {"0"} else sha[:10]
    return out
