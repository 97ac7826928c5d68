"""ffbench: does Forward-Forward really train with less memory than backprop? Measured."""

from .tracking import track  # light: torch is imported when a block is measured
from .version import __version__

__all__ = ["__version__", "track"]
