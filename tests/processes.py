"""The command lines of this machine's live processes, for tests that check what is left running."""

from pathlib import Path


def command_lines() -> dict[int, list[str]]:
    """pid -> argv of every process readable now (a process that ends meanwhile is skipped)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        found[int(proc.name)] = argv[:-1] if argv and argv[-1] == "" else argv
    return found


def matching(*fragments: str) -> list[int]:
    """Pids whose command line (argv joined by spaces, plus a trailing space) holds every fragment."""
    return [pid for pid, argv in command_lines().items() if all(f in " ".join(argv) + " " for f in fragments)]
