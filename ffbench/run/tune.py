"""`python -m ffbench.run.tune`: run (or read) the tuning record of a profile's accuracy
network (`ffbench.run.tuning`). A command: it reads the profiles of `reproduce`, so it sits
beside it, above the tuning procedure."""

from __future__ import annotations

from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """``python -m ffbench.run.tune [--profile quick] [--data-dir DIR] [--results DIR]``: run
    (or read) the tuning record of a profile's accuracy network on MNIST (or `auto`)."""
    import argparse

    from ..analysis.thresholds import target_accuracy
    from ..data import load_dataset
    from .reproduce import PROFILES
    from .tuning import load_or_tune

    p = argparse.ArgumentParser(prog="python -m ffbench.run.tune")
    p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--dataset", default="auto")
    p.add_argument("--results", default="results")
    args = p.parse_args(argv)
    plan = PROFILES[args.profile].tuning
    dataset = load_dataset(args.dataset, data_dir=args.data_dir)
    record, path = load_or_tune(plan, dataset, target_accuracy(dataset.name, plan.arch),
                                Path(args.results) / "tuning")  # fmt: skip
    for family, f in record["families"].items():
        print(f"{family}: chosen {f['chosen']}")
    print(f"tuning record: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
