"""Views of the simulation: each renders from a Simulation snapshot and owns no state of its own."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.service import DecisionService
from engine.sim.agent import Agent
from engine.sim.simulation import Simulation
from engine.sim.world import NEEDS, format_clock

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STATE_STYLE = {"idle": "dim", "thinking": "bold yellow", "acting": "green"}
SOURCE_STYLE = {"model": "green", "retry": "yellow", "cache": "cyan", "fallback": "red", "rules": "magenta"}


_TITLES = {"Dr.", "Mr.", "Mrs.", "Ms.", "Lord", "Lady", "Sister", "Queen", "King"}


def short_name(name: str) -> str:
    """'Dr. Ruth Adeyemi' -> 'Ruth', 'Maya Lindqvist' -> 'Maya'."""
    words = [w for w in name.split() if w not in _TITLES] or name.split()
    return words[0]


def need_bar(value: float, width: int = 12) -> Text:
    """A coloured bar for a 0..100 need."""
    filled = round(value / 100 * width)
    style = "green" if value >= 60 else "yellow" if value >= 35 else "red"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")


def state_cell(agent: Agent, frame: int) -> Text:
    """'⠋ thinking' with a spinner, '⠋ acting' for a leftover purpose done while deciding, or the state."""
    label: str = agent.status
    if agent.status == "thinking" or (agent.status == "acting" and agent.action and agent.action.provisional):
        label = f"{SPINNER[frame % len(SPINNER)]} {agent.status}"
    return Text(label, style=STATE_STYLE[agent.status])


class WorldView(Static):
    """The places and who is in each."""

    def render_world(self, sim: Simulation, selected: str | None) -> None:
        """Redraw from the simulation."""
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for place in sim.world.places:
            here = [a for name, a in sorted(sim.agents.items()) if a.place == place.name]
            people = Text()
            for i, agent in enumerate(here):
                if i:
                    people.append(", ")
                style = "reverse" if agent.name == selected else STATE_STYLE[agent.status]
                people.append(short_name(agent.name), style=style)
            table.add_row(place.name, people if here else Text("·", style="dim"))
        self.update(table)


class Inspector(Static):
    """Everything about the selected character."""

    def render_agent(self, sim: Simulation, agent: Agent | None, *, timings: bool = True) -> None:
        """Redraw for ``agent`` (or a hint when none is selected)."""
        if agent is None:
            self.update(Text("Select a character to inspect.", style="dim"))
            return
        p = agent.profile
        out = Text()
        out.append(f"{p.name}\n", style="bold")
        out.append(f"{p.description}\n", style="italic")
        if p.background:
            out.append(f"{p.background}\n", style="dim")
        out.append(f"\nmood {agent.mood()}  ·  at {agent.place}\n")
        for need in NEEDS:
            out.append(f"{need:7} ")
            out.append_text(need_bar(agent.needs[need]))
            out.append(f" {agent.needs[need]:3.0f}\n")
        if agent.action is not None:
            left = max(0, agent.action.end - sim.clock)
            target = f" → {agent.action.target}" if agent.action.target else ""
            reflex = agent.action.reflex
            while_deciding = (
                ", first reaction while deciding"
                if reflex
                else ", while deciding anew"
                if agent.action.provisional
                else ""
            )
            out.append(
                f"\nnow: {agent.action.name}{target} ({left} min left{while_deciding})\n", style="green"
            )
            if reflex:  # the rules' reading of the moment, not a purpose of the latest motivation
                out.append(f"  {agent.action.purpose[:120]}\n", style="green")
        if agent.motivation is not None:
            source = agent.decision_source or "?"
            latency = (
                f"{agent.decision_latency_ms:.0f} ms"
                if agent.decision_latency_ms is not None and timings
                else ""
            )
            out.append("\nlatest motivation ")
            out.append(f"[{source}]", style=SOURCE_STYLE.get(source, ""))
            out.append(f" {latency}\n")
            for i, (key, purpose) in enumerate(zip("abc", agent.motivation.purposes(), strict=True)):
                following = agent.action.purpose if agent.action and agent.action.provisional else None
                mark = "▶" if i == agent.chosen else "▷" if purpose == following else " "
                out.append(f"{mark} {key}. {purpose}\n", style="bold" if i == agent.chosen else "")
        memories = agent.memory.retrieve(sim.clock, k=3)
        if memories:
            out.append("\nmemories\n", style="underline")
            for m in memories:
                out.append(f"  {format_clock(m.minute)} ({m.importance}) {m.text[:90]}\n")
        rels = sorted(agent.relationships.items(), key=lambda kv: -abs(kv[1].affinity))[:5]
        if rels:
            out.append("\nrelationships\n", style="underline")
            for other, rel in rels:
                style = "green" if rel.affinity > 0 else "red" if rel.affinity < 0 else "dim"
                out.append(f"  {other:20} ")
                out.append(f"{rel.affinity:+6.1f}", style=style)
                out.append(f"  familiarity {rel.familiarity:3.0f}\n")
        self.update(out)


class StatsPanel(Static):
    """Decisions/s, latency percentiles, tokens/s, cache hits, fallbacks."""

    def render_stats(
        self, service: DecisionService, sim: Simulation, model_label: str, *, timings: bool = True
    ) -> None:
        """Redraw from the service's statistics."""
        s = service.stats()
        text = Text()
        text.append(f"model {model_label}\n", style="bold")
        if timings:
            text.append(f"decisions {s.decisions}  ({s.decisions_per_s:.2f}/s)\n")
            text.append(f"latency p50 {s.p50_latency_ms:.0f} ms  p95 {s.p95_latency_ms:.0f} ms\n")
            text.append(f"tokens/s {s.tokens_per_s:.0f}  batch ≤ {s.max_batch_size}  queued {s.queued}\n")
        else:
            text.append(f"decisions {s.decisions}\n")
        text.append(f"cache {s.cache_hits}  retries {s.retries}  ")
        text.append(f"fallbacks {s.fallbacks}", style="red" if s.fallbacks else "")
        text.append(f"\ninteractions {sim.counters['interactions']}  unmapped {sim.counters['unmapped']}")
        self.update(text)
