"""Faults classified honestly (issue 24): a killed template is `killed`, a worker silenced by a
full disk is an environment fault; both are measured again by a plain resume."""

from pathlib import Path

import ffbench.run.statuses as statuses
from ffbench.run.executors import Job, JobResult
from ffbench.run.sweep import _record_without_result
from ffbench.schema import ENVIRONMENT_FAULT, needs_measuring


def result(returncode, tail="", **facts) -> JobResult:
    job = Job("bp.json", {"config": {"trainer": "bp"}}, Path("s.spec"), Path("out/.work/1-bp.json"))
    return JobResult(job, None, returncode, 1.0, False, tail, worker=facts)


def test_a_template_that_went_away_is_killed_and_measured_again():
    record = _record_without_result(result(None, "template exited"))
    assert record["status"] == "killed" and "re-measured on resume" in record["error"]
    assert needs_measuring(record)


def test_a_silent_failure_on_a_full_disk_is_an_environment_fault(monkeypatch):
    monkeypatch.setattr(statuses, "disk_full", lambda path: True)
    record = _record_without_result(result(1))
    assert record["status"] == "error" and record["fault"] == ENVIRONMENT_FAULT
    assert needs_measuring(record)
    monkeypatch.setattr(statuses, "disk_full", lambda path: False)
    record = _record_without_result(result(1))
    assert "fault" not in record and not needs_measuring(record)


def test_the_worker_exit_status_of_a_full_disk_is_an_environment_fault():
    record = _record_without_result(result(statuses.WORKER_EXIT_ENVIRONMENT))
    assert record["fault"] == ENVIRONMENT_FAULT and needs_measuring(record)


def test_disk_full_reads_the_file_system_of_the_nearest_folder(tmp_path):
    assert statuses.disk_full(tmp_path / "not" / "yet", spare=0) is False
    assert statuses.disk_full(tmp_path, spare=2**62) is True
