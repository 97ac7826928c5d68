"""Kept for its import path: the executors live in `ffbench.run.executors`."""

from .executors import PACKAGE_ROOT, Executor, Job, JobResult, get_executor
from .executors.subprocess import SubprocessExecutor as LocalExecutor  # the fresh-interpreter one

__all__ = ["PACKAGE_ROOT", "Executor", "Job", "JobResult", "LocalExecutor", "get_executor"]
