"""Environment metadata recorded with every result: what ran, where, with what."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from .measure.timer import available_cores
from .proc import cpu_model
from .version import __version__

REVISION_ENV = "FFBENCH_GIT_REVISION"  # the revision, given explicitly where git cannot say


def git_revision() -> str | None:
    """`git rev-parse --short HEAD` (+ `-dirty`) of the code that runs; where that fails (a
    copied tree without git history) the revision given in $FFBENCH_GIT_REVISION, if any."""
    return _git_revision() or os.environ.get(REVISION_ENV) or None


def _git_revision() -> str | None:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def environment(device: torch.device) -> dict:
    return {
        "ffbench": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": describe_device(device),
        "cpu_model": cpu_model(),
        "cores": available_cores(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "git_revision": git_revision(),
    }
