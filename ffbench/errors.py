"""Errors a user can cause. The CLI turns each into one line and a non-zero exit."""


class FfbenchError(Exception):
    """Base class: bad input or an unavailable resource, never a bug."""


class ConfigError(FfbenchError, ValueError):
    """A configuration value is invalid (unknown name, non-positive size, ...)."""


class DataUnavailableError(FfbenchError):
    """A dataset could not be found locally and could not be downloaded."""


class DeviceUnavailableError(FfbenchError):
    """The requested device (e.g. cuda) is not available on this machine."""


class EnvironmentFault(FfbenchError):
    """The machine, not the input, failed (a full disk, a file-size limit): exit status 1."""
