"""Run the demo headless on a real model for a while and save what it shows as an SVG.

    python scripts/screenshot.py --model default --seconds 40 --out docs/demo.svg
    python scripts/screenshot.py --inject "A fire breaks out at the bakery and smoke pours into the square@Bakery" \
        --inject-after 10 --seconds 90 --speed 4

With --inject, the event goes in once someone is at or next to the place; the screenshot is taken
when everyone it reached has decided again, with the first of them selected and the event log
filtered to them.

This is how the README's screenshot is made: a real run, not a mock-up. It prints the decision
sources so the caption can say what the run did.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import DataTable

from demo.app import build_app


async def capture(
    world: str, model: str, seconds: float, speed: int, out: Path, inject: str | None, inject_after: float
) -> None:
    """Run the app for ``seconds`` of wall-clock time (injecting an event on the way), then save a screenshot."""
    app = build_app(world, model, seed=0, speed=speed)
    async with app.run_test(size=(160, 48)) as pilot:
        if inject:
            text, _, place = inject.rpartition("@")
            await pilot.pause(inject_after)
            waited = inject_after
            while waited < seconds / 2 and not _present(app, place):  # nobody there yet: wait for someone
                await pilot.pause(1.0)
                waited += 1.0
            inject_after = waited
            with app.lock:
                reached = app.sim.inject_event(text, place=place, importance=9)
            print(f"injected {text!r} at {place}: reached {', '.join(reached) or 'nobody'}")
            seconds -= inject_after
            if reached:  # show the first of them, and the events they are in
                table = app.query_one("#characters", DataTable)
                table.move_cursor(row=table.get_row_index(reached[0]))
                await pilot.pause(0.5)  # the highlight selects them
                app.action_toggle_filter()
                while seconds > 0 and any(name in app.sim.pending for name in reached):
                    await pilot.pause(1.0)  # until everyone it reached has decided anew
                    seconds -= 1.0
                seconds = min(seconds, 2.0)
            app.refresh_views()
        await pilot.pause(max(seconds, 0.5))
        app.save_screenshot(str(out.name), path=str(out.parent))
        stats = app.sim.service.stats()
        print(f"{app.sim.counters['decisions']} decisions; sources {stats.by_source}; "
              f"p50 {stats.p50_latency_ms:.0f} ms; unmapped {app.sim.counters['unmapped']}")  # fmt: skip


def _present(app: object, place: str) -> int:
    """How many characters an event at ``place`` would reach now."""
    sim = app.sim  # type: ignore[attr-defined]
    with app.lock:  # type: ignore[attr-defined]
        near = sim.neighbourhood(place)
        return sum(agent.place in near for agent in sim.agents.values())


def main() -> int:
    """Parse arguments and capture."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", default="town")
    parser.add_argument("--model", default="default")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--speed", type=int, default=15, help="sim-minutes per real second")
    parser.add_argument("--out", type=Path, default=Path("docs/demo.svg"))
    parser.add_argument("--inject", help="an event to inject, TEXT@PLACE (importance 9)")
    parser.add_argument("--inject-after", type=float, default=10.0, help="seconds into the run")
    args = parser.parse_args()
    asyncio.run(
        capture(args.world, args.model, args.seconds, args.speed, args.out, args.inject, args.inject_after)
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
