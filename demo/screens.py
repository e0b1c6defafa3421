"""Modal screens: inject an event, help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static


@dataclass(frozen=True)
class InjectRequest:
    """What the inject form produced."""

    text: str
    place: str | None
    character: str | None
    importance: int


class InjectScreen(ModalScreen[InjectRequest | None]):
    """A small form: event text, where or for whom, how important."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        ("escape", "cancel", "Cancel")
    ]

    def __init__(self, places: list[str], people: list[str], selected: str | None) -> None:
        super().__init__()
        self.places = places
        self.people = people
        self.selected = selected

    def compose(self) -> ComposeResult:
        scope = [("everyone", "*")] + [(f"place: {p}", f"place:{p}") for p in self.places]
        scope += [(f"character: {c}", f"char:{c}") for c in self.people]
        default = f"char:{self.selected}" if self.selected else "*"
        with Vertical(id="inject"):
            yield Label("Inject an event")
            yield Input(placeholder="e.g. A fire breaks out at the bakery", id="text")
            yield Select(scope, value=default, allow_blank=False, id="scope")
            yield Select(
                [(f"importance {i}", i) for i in range(1, 11)], value=8, allow_blank=False, id="importance"
            )
            with Horizontal():
                yield Button("Inject", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted, "#text")
    @on(Button.Pressed, "#ok")
    def _submit(self) -> None:
        text = self.query_one("#text", Input).value.strip()
        if not text:
            self.notify("type what happens first", severity="error")
            return
        scope = str(self.query_one("#scope", Select).value)
        importance = int(self.query_one("#importance", Select).value)  # type: ignore[arg-type]
        place = scope.removeprefix("place:") if scope.startswith("place:") else None
        character = scope.removeprefix("char:") if scope.startswith("char:") else None
        self.dismiss(InjectRequest(text, place, character, importance))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


HELP = """\
[b]Daydream[/b]: each character decides what to do next through the model ({model}).
Three purposes come back (a, b, c); the chooser picks one (▶), the mapper turns it into an action.

[b]space[/b]  pause / resume          [b]+ / −[/b]  faster / slower
[b]e[/b]      inject an event          [b]f[/b]      filter the log to the selected character
[b]s / l[/b]  save / load the world    [b]?[/b]      this help        [b]q[/b]  quit

Sources: [green]model[/green] first try · [yellow]retry[/yellow] second try · [cyan]cache[/cyan] seen before ·
[red]fallback[/red] rules, because the model was late or invalid · [magenta]rules[/magenta] no model chosen.
"""


class HelpScreen(ModalScreen[None]):
    """Key bindings and what the colours mean."""

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        ("escape,question_mark,q", "close", "Close")
    ]

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield Static(HELP.format(model=self.model), id="help")

    def action_close(self) -> None:
        self.dismiss(None)
