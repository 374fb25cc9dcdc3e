"""The key row at the bottom, htop-style: `q quit` and `? help` always first and always
shown; at narrower widths the other keys lose their descriptions (from the last), then
the last keys go, so the row never ends cut in the middle of a word."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

#: (key, description); the first two are never dropped.
KEYS: tuple[tuple[str, str], ...] = (
    ("q", "quit"),
    ("?", "help"),
    ("1-9", "run"),
    ("tab", "next"),
    ("space", "pause"),
    ("a", "auto"),
    ("b", "reference"),
    ("i", "idle"),
    ("r", "reset"),
    ("s", "snapshot"),
    ("d", "details"),
    ("^p", "palette"),
)
KEEP = 2
GAP = "  "


def fit_keys(width: int, keys: tuple[tuple[str, str], ...] = KEYS) -> list[tuple[str, str]]:
    """The (key, description) pairs to show in ``width`` cells; "" = key only."""
    n = len(keys)
    candidates: list[list[tuple[str, str]]] = []
    # Every key described; then descriptions dropped from the last key backwards.
    for described in range(n, KEEP - 1, -1):
        candidates.append([(k, d if i < described else "") for i, (k, d) in enumerate(keys)])
    # Then keys dropped from the end (the first KEEP stay, described).
    for shown in range(n - 1, KEEP - 1, -1):
        candidates.append([(k, d if i < KEEP else "") for i, (k, d) in enumerate(keys[:shown])])
    for candidate in candidates:
        if _width(candidate) <= width:
            return candidate
    return [(k, d) for k, d in keys[:KEEP]]


def _width(pairs: list[tuple[str, str]]) -> int:
    return sum(len(k) + (len(d) + 1 if d else 0) for k, d in pairs) + len(GAP) * (len(pairs) - 1)


class KeyBar(Static):
    """One line of keys, rebuilt for the current width."""

    def __init__(self, number_keys: str | None = "1-9", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.number_keys = number_keys

    def set_number_keys(self, label: str | None) -> None:
        """The number keys that run a backend ("1-3"); None when none does."""
        self.number_keys = label
        self.refresh(layout=True)

    def render(self) -> Text:
        keys: list[tuple[str, str]] = []
        for key, description in KEYS:
            if key != "1-9":
                keys.append((key, description))
            elif self.number_keys is not None:
                keys.append((self.number_keys, description))
        text = Text(no_wrap=True, overflow="crop")
        for i, (key, description) in enumerate(fit_keys(self.size.width - 1, tuple(keys))):
            if i:
                text.append(GAP)
            text.append(key, style="bold reverse")
            if description:
                text.append(" " + description)
        return text
