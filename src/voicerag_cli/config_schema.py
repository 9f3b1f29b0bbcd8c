"""How a config section declares what a valid value is, and the one validator that checks it.

A section is a frozen dataclass. A field with rules is declared with `setting(default, *checks)`:
each check is a test and the words that say what it wants (`positive()`, `at_most(1000)`,
`one_of("asr", "e2e")`), kept in the field's metadata. `check_section` tests every field's
checks in declaration order, then calls the section's own `check()` where it has one: rules that
tie two fields together (`index.overlap_words` below `index.chunk_words`). Standard library and
`errors` only: every backend's config section uses it, and loading settings loads no model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from voicerag_cli.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Check",
    "at_least",
    "at_most",
    "between",
    "check_section",
    "in_range",
    "one_of",
    "positive",
    "setting",
]

T = TypeVar("T")
_CHECKS = "voicerag.checks"  # the metadata key holding a field's checks


@dataclass(frozen=True)
class Check:
    """`test(value)` is true for a valid value; `detail` says what is wanted, formatted with
    the value (`{value}`) for the error message."""

    test: Callable[[Any], bool]
    detail: str

    def problem(self, value: Any) -> str | None:
        return None if self.test(value) else self.detail.format(value=value)


def setting(default: T, *checks: Check) -> T:
    """A field with a default and the checks its values must pass."""
    return dataclasses.field(default=default, metadata={_CHECKS: checks})


def positive() -> Check:
    return Check(lambda value: value > 0, "must be positive, got {value}")


def at_least(low: float, detail: str = "") -> Check:
    return Check(lambda value: value >= low, (detail or f"must be >= {low}") + ", got {value}")


def at_most(high: int) -> Check:
    """An upper bound on a count: past it a value is a typo that would exhaust memory or
    overflow a C int."""
    return Check(lambda value: value <= high, f"at most {high:,}, got {{value:,}}")


def in_range(low: float, high: float, detail: str = "", *, above: bool = False) -> Check:
    """low <= value <= high (low < value with `above`)."""
    words = detail or (f"must be > {low} and <= {high}" if above else f"must be in {low}..{high}")
    if above:
        return Check(lambda value: low < value <= high, words + ", got {value}")
    return Check(lambda value: low <= value <= high, words + ", got {value}")


def between(low: float, high: float) -> Check:
    return Check(lambda value: low <= value <= high, f"must be between {low} and {high}, got {{value}}")


def one_of(*choices: Any, quoted: bool = True) -> Check:
    """The value is one of `choices`: "expected 'asr' or 'e2e'", or unquoted "must be cosine or l2"."""
    if quoted:
        words = "expected " + " or ".join(repr(choice) for choice in choices) + ", got {value!r}"
    else:
        words = "must be " + " or ".join(str(choice) for choice in choices) + ", got {value!r}"
    return Check(lambda value: value in choices, words)


def field_checks(field: dataclasses.Field[Any]) -> tuple[Check, ...]:
    return tuple(field.metadata.get(_CHECKS, ()))


def check_section(name: str, section: DataclassInstance) -> None:
    """Raise ConfigError naming the first key of section `name` whose value fails a check."""
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        for check in field_checks(field):
            problem = check.problem(value)
            if problem is not None:
                raise ConfigError(key=f"{name}.{field.name}", detail=problem)
    cross_check: Callable[[], None] | None = getattr(section, "check", None)
    if cross_check is not None:
        cross_check()
