"""``python -m ffbench.run.executors.probe SPEC OUT``: the environment of a worker machine.

SPEC holds {"device": "auto"|"cpu"|"cuda"..., "parent_pid": int}. OUT gets
`ffbench.environment.environment` of the resolved device, the host name and `probe()`:
what a remote executor records as the results folder's environment when the driver runs
where the workers do not (a login node without a GPU).
"""

from __future__ import annotations

import json
import platform
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path, out_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    from ...device import resolve_device
    from ...environment import environment
    from ...proc import die_with_parent
    from ...results.store import write_json_atomic
    from . import probe

    die_with_parent(spec.get("parent_pid"))
    env = environment(resolve_device(spec["device"]))
    write_json_atomic(out_path, {**env, "hostname": platform.node(), "probe": probe()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
