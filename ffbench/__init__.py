"""ffbench: does Forward-Forward really train with less memory than backprop? Measured."""

__version__ = "0.1.0"
