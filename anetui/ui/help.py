"""The `?` screen (every key, what the numbers mean; fits 80 columns) and the `d` screen
(the backends that cannot run here, with `anetui doctor`'s reason for each)."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """[b]anetui keys[/b]

 [b]1–9[/b], enter, click  run that backend   [b]tab[/b] / [b]shift+tab[/b]  next / previous
 [b]space[/b]  pause / resume                 [b]a[/b]  auto-cycle the backends
 [b]b[/b]      selected backend = reference   [b]i[/b]  idle baseline (pauses a few s)
 [b]r[/b]      reset the statistics           [b]s[/b]  snapshot: JSON, Markdown, SVG
 [b]d[/b]      backends not available here    [b]ctrl+p[/b]  command palette
 [b]q[/b]      quit                           [b]?[/b]  this help

[b]What the numbers are[/b]
 Latency: wall-clock time of one inference, device synchronisation included.
 p50 (a–b): the median with its 95% interval. inf/s: with harness overhead.
 mJ/inf: energy of the power windows wholly inside a backend's runs divided
 by the inferences in them; active mJ/inf subtracts the idle baseline (i).
 Ratios are against the reference (marked "ref" in the list).
 cpu: the machine's load; "others" is what other processes use — a busy
 machine slows every backend.

[dim]escape or ? to close[/dim]"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP)


class DetailsScreen(ModalScreen[None]):
    """Why each backend cannot run here (the same probes as `anetui doctor`)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,d,q", "dismiss", "close")]

    def __init__(self, reasons: list[tuple[str, str]]) -> None:
        super().__init__()
        self.reasons = reasons

    def compose(self) -> ComposeResult:
        width = max((len(backend_id) for backend_id, _ in self.reasons), default=0) + 2
        lines = [f"[b]{len(self.reasons)} backends not available here[/b]", ""]
        lines += [f" [b]{i:<{width}}[/b]{escape(why)}" for i, why in self.reasons]
        lines += ["", "[dim]`anetui doctor` says the same · escape or d to close[/dim]"]
        with VerticalScroll(id="details"):
            yield Static("\n".join(lines))
