"""The Daydream demo: watch a simulated world think.

    daydream demo [WORLD.yaml] [--model NAME] [--backend rules]

The simulation steps in a worker thread and inference runs on the DecisionService's own thread, so
the screen never waits for the model. Views are redrawn from the simulation under a lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, RichLog, Static

from demo.screens import HelpScreen, InjectRequest, InjectScreen
from demo.widgets import SOURCE_STYLE, Inspector, StatsPanel, WorldView, short_name, state_cell
from engine.service import DecisionService
from engine.sim.events import Event
from engine.sim.simulation import Simulation
from engine.sim.world import format_clock

SPEEDS = (1, 2, 5, 10, 15, 30, 60, 120)  # sim-minutes per real second
DEFAULT_SAVE = Path("daydream-save.json")


class DaydreamApp(App[None]):
    """A live view of a simulated world whose characters decide through the model."""

    CSS_PATH = "app.tcss"
    TITLE = "Daydream"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("space", "toggle_pause", "Pause/Resume"),
        Binding("plus,equals_sign", "faster", "+ Speed"),
        Binding("minus", "slower", "− Speed"),
        Binding("e", "inject", "Inject event"),
        Binding("f", "toggle_filter", "Filter log"),
        Binding("s", "save", "Save"),
        Binding("l", "load", "Load"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        sim: Simulation,
        *,
        model_label: str,
        speed: int = 10,
        running: bool = True,
        notice: str | None = None,
        save_path: Path = DEFAULT_SAVE,
        frame_s: float = 0.1,
        timings: bool = True,
    ) -> None:
        super().__init__()
        self.sim = sim
        self.model_label = model_label
        self.speed = speed
        self.running = running
        self.notice = notice
        self.save_path = save_path
        self.frame_s = frame_s
        self.timings = timings  # off in snapshot tests: wall-clock numbers differ run to run
        self.selected: str | None = None
        self.filter_selected = False
        self.lock = threading.RLock()
        self._frame = 0
        self._new_events: deque[Event] = deque()
        self._stop = threading.Event()
        sim.bus.subscribe(self._new_events.append)

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield DataTable(id="characters", cursor_type="row", zebra_stripes=True)
                yield WorldView(id="world")
            with VerticalScroll(id="inspector-box"):
                yield Inspector(id="inspector")
        with Horizontal(id="bottom"):
            yield RichLog(id="log", max_lines=2000, wrap=True, markup=False)
            yield StatsPanel(id="stats")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#characters", DataTable)
        for column, width in (("name", 18), ("place", 16), ("doing", 18), ("state", 11)):
            table.add_column(column, key=column, width=width)
        with self.lock:
            for name in sorted(self.sim.agents):
                table.add_row(name, "", "", "", key=name)
        self.query_one("#log", RichLog).border_title = "events"
        self.query_one("#stats", StatsPanel).border_title = "inference"
        self.query_one("#world", WorldView).border_title = "world"
        self.query_one("#inspector-box").border_title = "inspector"
        if self.notice:
            self.notify(self.notice, severity="warning", timeout=12)
        self.refresh_views()
        self.set_interval(0.25, self.refresh_views)
        self.run_simulation()

    # -- simulation worker ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="simulation")
    def run_simulation(self) -> None:
        """Advance the world in real time; never waits on the model (the service runs it)."""
        carry = 0.0
        last = time.monotonic()
        while not self._stop.is_set():
            time.sleep(self.frame_s)
            now = time.monotonic()
            elapsed, last = now - last, now
            if not self.running:
                continue
            carry += elapsed * self.speed
            minutes = int(carry)
            if minutes:
                carry -= minutes
                with self.lock:
                    self.sim.step(minutes)

    def on_unmount(self) -> None:
        self._stop.set()

    # -- drawing ------------------------------------------------------------------------------

    def refresh_views(self) -> None:
        """Redraw every view from the simulation (called on a timer and after actions)."""
        if not self.is_running or self._stop.is_set() or not self.screen_stack:
            return  # a timer can fire while the app shuts down
        try:
            self._redraw()
        except NoMatches:  # widgets already gone during shutdown
            return

    def _redraw(self) -> None:
        self._frame += 1
        events = []
        while self._new_events:
            events.append(self._new_events.popleft())
        with self.lock:
            self._draw_header()
            self._draw_table()
            self.query_one("#world", WorldView).render_world(self.sim, self.selected)
            agent = self.sim.agents.get(self.selected) if self.selected else None
            self.query_one("#inspector", Inspector).render_agent(self.sim, agent, timings=self.timings)
            self.query_one("#stats", StatsPanel).render_stats(
                self.sim.service, self.sim, self.model_label, timings=self.timings
            )
        log = self.query_one("#log", RichLog)
        for event in events:
            if self._shows(event):
                log.write(self._event_text(event))

    def _shows(self, event: Event) -> bool:
        return not self.filter_selected or self.selected is None or self.selected in event.actors

    def _event_text(self, event: Event) -> Text:
        text = Text(f"{format_clock(event.minute)} ", style="dim")
        text.append(
            f"{event.kind:11} ",
            style={
                "decision": "cyan",
                "follow": "blue",
                "interaction": "magenta",
                "injected": "bold red",
                "unmapped": "yellow",
            }.get(event.kind, ""),
        )
        text.append(event.text)
        source = event.data.get("source")
        if source:
            text.append(f" [{source}]", style=SOURCE_STYLE.get(source, ""))
        return text

    def _draw_header(self) -> None:
        state = (
            Text(" RUNNING ", style="bold black on green")
            if self.running
            else Text(" PAUSED ", style="bold black on yellow")
        )
        header = Text()
        header.append(f" {self.sim.world.name} ", style="bold")
        header.append(f" {format_clock(self.sim.clock)}  day {self.sim.clock // 1440 + 1} ")
        header.append(f" speed {self.speed} sim-min/s ")
        header.append_text(state)
        self.query_one("#header", Static).update(header)

    def _draw_table(self) -> None:
        table = self.query_one("#characters", DataTable)
        for name, agent in self.sim.agents.items():
            doing = agent.action.name if agent.action and agent.status == "acting" else ""
            if agent.action and agent.action.target and agent.status == "acting":
                doing += f" → {short_name(agent.action.target)}"
            table.update_cell(name, "place", agent.place)
            table.update_cell(name, "doing", doing)
            table.update_cell(name, "state", state_cell(agent, self.sim.clock + self._frame * self.running))

    def _rebuild_log(self) -> None:
        log = self.query_one("#log", RichLog)
        log.clear()
        with self.lock:  # events are published under this lock: none can fall between the two lines
            self._new_events.clear()  # they are in bus.recent too; writing both showed them twice
            events = list(self.sim.bus.recent)[-300:]
        for event in events:
            if self._shows(event):
                log.write(self._event_text(event))

    # -- actions ------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#characters")
    def _select(self, event: DataTable.RowHighlighted) -> None:
        self.selected = str(event.row_key.value) if event.row_key is not None else None
        if self.filter_selected:
            self._rebuild_log()
        self.refresh_views()

    def action_toggle_pause(self) -> None:
        self.running = not self.running
        self.refresh_views()

    def action_faster(self) -> None:
        self.speed = next((s for s in SPEEDS if s > self.speed), SPEEDS[-1])
        self.refresh_views()

    def action_slower(self) -> None:
        self.speed = next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0])
        self.refresh_views()

    def action_toggle_filter(self) -> None:
        self.filter_selected = not self.filter_selected
        self.query_one("#log", RichLog).border_title = (
            f"events: {self.selected}" if self.filter_selected and self.selected else "events"
        )
        self._rebuild_log()

    def action_inject(self) -> None:
        places = [p.name for p in self.sim.world.places]
        people = sorted(self.sim.agents)

        def done(request: InjectRequest | None) -> None:
            if request is None:
                return
            with self.lock:
                reached = self.sim.inject_event(
                    request.text,
                    place=request.place,
                    character=request.character,
                    importance=request.importance,
                )
            self.notify(f"event reached {len(reached)}: {', '.join(reached) or 'nobody'}")
            self.refresh_views()

        self.push_screen(InjectScreen(places, people, self.selected), done)

    def action_save(self) -> None:
        with self.lock:
            path = self.sim.save(self.save_path)
        self.notify(f"saved to {path}")

    def action_load(self) -> None:
        if not self.save_path.exists():
            self.notify(f"no save at {self.save_path}", severity="error")
            return
        try:
            with self.lock:
                old = self.sim
                loaded = Simulation.load(
                    self.save_path,
                    old.world,
                    old.cast,
                    old.service,
                    lockstep=old.lockstep,
                    deadline_s=old.deadline_s,
                )
                loaded.bus.subscribe(self._new_events.append)
                self.sim = loaded
        except (ValueError, OSError) as err:
            self.notify(f"load failed: {err}", severity="error")
            return
        self._rebuild_log()
        self.notify(f"loaded {self.save_path} at {format_clock(self.sim.clock)}")
        self.refresh_views()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.model_label))


def build_app(
    world: str, model: str, *, seed: int = 0, speed: int = 10, deadline_s: float | None = 20.0
) -> DaydreamApp:
    """The app on a world and model; falls back to the rules backend, with a notice, if the model fails."""
    from engine.models import ModelSpecError

    notice = None
    try:
        service = DecisionService(model=model)
        label = service.model_id
    except (ModelSpecError, FileNotFoundError, RuntimeError, OSError) as err:
        notice = f"model {model!r} could not load ({err}); running on the rules backend instead"
        service = DecisionService("rules")
        label = "rules (model unavailable)"
    sim = Simulation.from_world(world, service, seed=seed, deadline_s=deadline_s)
    return DaydreamApp(sim, model_label=label, speed=speed, notice=notice)
