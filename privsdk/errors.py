"""Errors privsdk raises for things a user can fix."""

from __future__ import annotations


class PrivsdkError(Exception):
    """Base of every privsdk error."""


class ConfigError(PrivsdkError):
    """A configuration mistake: bad file, bad variable, unknown name.

    ``where`` names the place (``file.toml:12`` or ``PRIVSDK_REQUIRE``),
    ``hint`` says what would be valid. ``str()`` gives the one message a user
    sees; the CLI prints it without a traceback and exits with status 2.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.__str__())

    def at(self, where: str) -> ConfigError:
        """The same error, placed at ``where`` unless it already has a place."""
        if self.where is not None:
            return self
        return ConfigError(self.message, where=where, hint=self.hint)

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class CatalogueError(PrivsdkError):
    """The packaged guarantee catalogue is malformed: a privsdk bug, not a user error."""
