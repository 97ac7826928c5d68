"""Running measurements: the harness (one measurement sequence), the worker process, executors,
sweeps, the largest-batch search, accuracy runs (`fit`) and `reproduce`."""
