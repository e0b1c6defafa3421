"""Run the demo headless on a real model for a while and save what it shows as an SVG.

    python scripts/screenshot.py --model default --seconds 40 --out docs/demo.svg

This is how the README's screenshot is made: a real run, not a mock-up. It prints the decision
sources so the caption can say what the run did.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.app import build_app


async def capture(world: str, model: str, seconds: float, speed: int, out: Path) -> None:
    """Run the app for ``seconds`` of wall-clock time, then save a screenshot."""
    app = build_app(world, model, seed=0, speed=speed)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(seconds)
        app.save_screenshot(str(out.name), path=str(out.parent))
        stats = app.sim.service.stats()
        print(f"{app.sim.counters['decisions']} decisions; sources {stats.by_source}; "
              f"p50 {stats.p50_latency_ms:.0f} ms; unmapped {app.sim.counters['unmapped']}")  # fmt: skip


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
    args = parser.parse_args()
    asyncio.run(capture(args.world, args.model, args.seconds, args.speed, args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
