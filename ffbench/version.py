"""The package's version (a leaf: the environment record and the CLI read it)."""

__version__ = "0.1.0"
