"""Run every hostile case and count the verdicts: clean / traceback / wrong exit / data lost.

    python tests/hostile/tally.py                 # this checkout
    PYTHONPATH=/path/to/old/ffbench python tests/hostile/tally.py   # an older ffbench: "before"
    python tests/hostile/tally.py --doc > docs/hostile-inputs.md

Prints one line per case that is not clean, then the totals.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogue import all_cases, render_doc  # noqa: E402
from hostile import VERDICTS, run_case  # noqa: E402

LIMIT = 400  # seconds a case may run in-process before it is stopped (and judged)


def main(argv: list[str]) -> int:
    cases = all_cases()
    if "--doc" in argv:
        sys.stdout.write(render_doc(cases))
        return 0
    only = [a for a in argv if not a.startswith("-")]
    counts = dict.fromkeys(VERDICTS, 0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ffbench-hostile-") as root:
        for i, case in enumerate(c for c in cases if not only or any(o in c.id for o in only)):
            try:
                verdict, why = run_case(case, Path(root) / f"{i:03d}", limit=LIMIT)
            except Exception as exc:  # noqa: BLE001 - a case that cannot even run counts as a traceback
                verdict, why = "traceback", f"the case itself failed: {type(exc).__name__}: {exc}"
            counts[verdict] += 1
            if verdict != "clean":
                print(f"{verdict:>10}  {case.id}  [{case.issue}]  {why[:160]}", flush=True)
    tried = sum(counts.values())
    print(f"tried {tried}: " + ", ".join(f"{n} {v}" for v, n in counts.items())
          + f" ({time.perf_counter() - started:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
