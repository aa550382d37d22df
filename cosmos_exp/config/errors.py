"""The one error type for bad configuration: it always names the offending key."""


class ConfigError(ValueError):
    """A configuration problem found before any work starts.

    `key` is the dotted path of the offending value (for example ``dataset.vision.fps``),
    `hint` says what to change.
    """

    def __init__(self, key: str, message: str, hint: str = "") -> None:
        self.key = key
        self.hint = hint
        text = f"config error at '{key}': {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class NotImplementedStage(RuntimeError):
    """A stage/backend combination that exists in the config tree but is not built yet."""
