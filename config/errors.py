"""The project's domain error: services raise it (or a subclass), views turn it into a form
error, a message or the contract's JSON error shape in one place."""


class PortalError(Exception):
    """A request that the program rules refuse; ``str(exc)`` is safe to show to the user."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
