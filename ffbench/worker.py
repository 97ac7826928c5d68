"""``python -m ffbench.worker SPEC_JSON OUT_JSON`` (implementation: :mod:`ffbench.run.worker`)."""

import sys

from .run.worker import main

if __name__ == "__main__":
    sys.exit(main())
