"""ffbench: does Forward-Forward really train with less memory than backprop? Measured."""

__version__ = "0.1.0"

from .tracking import track  # noqa: E402 - light: torch is imported when a block is measured

__all__ = ["__version__", "track"]
