"""The errors a user can fix, each printed as one line with exit code 2: bad configuration (naming the key)
and bad data (naming the file)."""


class ConfigError(ValueError):
    """A configuration problem found before any work starts.

    `key` is the dotted path of the offending value (for example ``dataset.vision.fps``),
    `hint` says what to change.
    """

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        self.key = key
        self.message = message
        self.hint = hint
        text = f"config error at '{key}': {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class DataError(ValueError):
    """Data that cannot be used: a missing split, a bad item in strict mode. The message names the file."""

