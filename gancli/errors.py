"""Errors meant for the user: the CLI prints them as one line and exits non-zero."""


class GanError(Exception):
    """A problem the user can fix (bad config, missing file, dataset not present)."""


class ConfigError(GanError):
    """A config value that fails validation; the message names the key."""
