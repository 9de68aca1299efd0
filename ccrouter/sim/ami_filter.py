"""AMI event filters as manager.c's `manager_add_filter` parses and `should_send_event` applies
them: the legacy regex form (`!` excludes; matched against the whole event text) and the
`MatchCriteria: name(X),header(Y),method(Z),action(include|exclude)` form. Pure values and
their parser; the session that holds them is in `ami_session.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventFilter:
    exclude: bool
    event_name: str | None
    header: str | None
    method: str  # regex | exact | starts_with | ends_with | contains | none
    pattern: str
    regex: re.Pattern[str] | None

    def matches(self, name: str, text: str) -> bool:
        if self.event_name is not None and self.event_name != name:
            return False
        if self.header is None:
            return self._match(text)
        for line in text.split("\r\n"):
            if line.startswith(self.header):
                value = line[len(self.header):].lstrip(" \t")
                if value and self._match(value):
                    return True
        return False

    def _match(self, data: str) -> bool:
        m = self.method
        if m == "regex":
            assert self.regex is not None
            return self.regex.search(data) is not None
        if m == "exact":
            return data == self.pattern
        if m == "starts_with":
            return data.startswith(self.pattern)
        if m == "ends_with":
            return data.endswith(self.pattern)
        if m == "contains":
            return self.pattern in data
        return True  # none


class FilterError(ValueError):
    """`kind` is the manager.c failure: "format" or "compile"."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


_METHODS = {"regex", "exact", "starts_with", "ends_with", "contains", "none"}


def parse_filter(criteria: str, pattern: str) -> EventFilter:
    """`criteria`: the MatchCriteria header ("" = legacy filter). Mirrors manager_add_filter."""
    exclude = pattern.startswith("!")
    if exclude:
        pattern = pattern[1:]
    method, name, header = "regex", None, None
    if not criteria:
        if not pattern:
            raise FilterError("format", "legacy filter with no filter pattern")
    else:
        method, found = "none", False
        for option in (o for o in re.split(r"[ ,)]+", criteria) if o):
            key, _, value = option.partition("(")
            value = value.strip()
            if key.startswith("action") and value in ("include", "exclude"):
                exclude = value == "exclude"
            elif key.startswith("name") and value:
                name = value
            elif key.startswith("header") and value:
                header = value if value.endswith(":") else value + ":"
            elif key.startswith("method") and value in _METHODS:
                method = value
            else:
                raise FilterError("format", f"filter option {option!r} is unknown or empty")
            found = True
        if not found:
            raise FilterError("format", "no action, name, header or method option")
        if bool(pattern) == (method == "none"):
            raise FilterError("format", f"method {method!r} does not fit pattern {pattern!r}")
    regex = None
    if pattern and method == "regex":
        try:
            regex = re.compile(pattern, re.DOTALL)  # regcomp without REG_NEWLINE
        except re.error as exc:
            raise FilterError("compile", str(exc)) from exc
    return EventFilter(exclude, name, header, method, pattern, regex)
