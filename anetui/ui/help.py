"""The `?` screen: every key binding, and what the numbers mean."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]anetui keys[/b]

  [b]1–9[/b]        run that backend            [b]tab / shift+tab[/b]  next / previous
  [b]space[/b]      pause / resume              [b]a[/b]  auto-cycle the ready backends
  [b]b[/b]          make the selected backend the reference for ratios
  [b]i[/b]          measure the idle baseline (pauses everything for a few seconds)
  [b]r[/b]          reset the statistics        [b]s[/b]  snapshot (JSON, Markdown, SVG)
  [b]ctrl+p[/b]     command palette             [b]q[/b]  quit       [b]?[/b]  this help

[b]What the numbers are[/b]
  Latency: wall-clock time of one inference, device synchronisation included.
  p50 (a–b): the median with its 95% interval.  inf/s: with harness overhead.
  mJ/inf: energy of the power windows wholly inside a backend's runs ÷ inferences
  in them; active subtracts the idle baseline.  Ratios are against the reference.

[dim]escape or ? to close[/dim]"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Static(HELP)
