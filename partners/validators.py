"""Text the partner types that staff later read in emails and the admin: no control characters.

A line break in a name reached the staff's payout email as a line of its own ("Injected line:
URGENT approve"). Names and billing fields refuse C0/C1 control characters, Unicode line and
paragraph separators and the bidirectional overrides that reorder what a reader sees; the
billing address alone keeps its line breaks (it is several lines)."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Bidirectional embeddings, overrides and isolates (format characters that reorder text).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control_character(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS


@deconstructible
class NoControlCharactersValidator:
    message = "Remove the line breaks, tabs and other control characters from this field."
    code = "control_characters"

    def __init__(self, allow_line_breaks: bool = False) -> None:
        self.allow_line_breaks = allow_line_breaks

    def __call__(self, value: str) -> None:
        allowed = "\r\n" if self.allow_line_breaks else ""
        if any(is_control_character(char) and char not in allowed for char in str(value)):
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoControlCharactersValidator) and other.allow_line_breaks == self.allow_line_breaks


no_control_characters = NoControlCharactersValidator()
no_control_characters_but_line_breaks = NoControlCharactersValidator(allow_line_breaks=True)


def one_line(value: object) -> str:
    """``value`` with every control character (line breaks included) made a space: for text that
    must stay on its line whatever got into the database (the staff emails)."""
    return "".join(" " if is_control_character(char) else char for char in str(value))
