"""Pilot tests of the Textual demo with the rules backend and a slow fake backend."""

import time

from textual.widgets import RichLog

from demo.app import DaydreamApp, build_app
from demo.screens import InjectScreen
from engine import DecisionService
from engine.sim.simulation import Simulation
from tests.conftest import FakeBackend


def rules_app(tmp_path, **kwargs):
    sim = Simulation.from_world("town", DecisionService("rules"), seed=4, lockstep=True)
    sim.step(90)
    return DaydreamApp(sim, model_label="rules", running=False, save_path=tmp_path / "save.json", **kwargs)


def log_text(app):
    return "\n".join(line.text for line in app.query_one("#log", RichLog).lines)


async def test_select_pause_resume_and_speed(tmp_path):
    app = rules_app(tmp_path, speed=10)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("down", "down")
        await pilot.pause()
        assert app.selected == sorted(app.sim.agents)[2]
        inspector = str(app.query_one("#inspector").render())
        assert app.selected in inspector and "energy" in inspector
        assert not app.running
        clock = app.sim.clock
        await pilot.press("space")
        assert app.running
        await pilot.pause(0.6)
        assert app.sim.clock > clock  # the world moves while running
        await pilot.press("space")
        assert not app.running
        await pilot.press("plus")
        assert app.speed == 15
        await pilot.press("minus", "minus")
        assert app.speed == 5
        assert "PAUSED" in str(app.query_one("#header").render())


async def test_inject_event_reaches_log_and_inspector(tmp_path):
    app = rules_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        target = sorted(app.sim.agents)[0]
        app.selected = target
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, InjectScreen)
        await pilot.click("#text")
        await pilot.press(*"A wolf howls outside")
        await pilot.press("enter")
        await pilot.pause(0.4)
        assert "A wolf howls outside" in log_text(app)
        assert app.sim.agents[target].memory.items[-1].text == "A wolf howls outside"
        app.refresh_views()
        assert "A wolf howls outside" in str(app.query_one("#inspector").render())


async def test_filter_log_to_selected(tmp_path):
    app = rules_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.selected = "Maya Lindqvist"
        await pilot.press("f")
        await pilot.pause()
        shown = log_text(app).replace("\n", "")
        mine = [e for e in app.sim.bus.recent if "Maya Lindqvist" in e.actors]
        others = [e for e in app.sim.bus.recent if "Maya Lindqvist" not in e.actors]
        assert mine and others
        assert all(e.text[:40] in shown for e in mine)
        assert not any(e.text[:40] in shown for e in others)


async def test_filtering_right_after_an_event_shows_it_once(tmp_path):
    app = rules_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        app.selected = "Maya Lindqvist"
        with app.lock:
            app.sim.inject_event("The bakery bell cracks in two", character="Maya Lindqvist", importance=3)
        await pilot.press("f")  # before the next redraw: the event is queued and in the bus
        await pilot.pause()
        app.refresh_views()
        assert log_text(app).replace("\n", "").count("The bakery bell cracks in two") == 1


async def test_save_and_load(tmp_path):
    app = rules_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        clock = app.sim.clock
        await pilot.press("s")
        await pilot.pause()
        assert (tmp_path / "save.json").exists()
        app.sim.step(120)
        assert app.sim.clock == clock + 120
        await pilot.press("l")
        await pilot.pause()
        assert app.sim.clock == clock


async def test_ui_stays_responsive_while_the_model_is_slow(tmp_path):
    backend = FakeBackend(delay_s=3.0)
    sim = Simulation.from_world("town", DecisionService(backend), seed=1)
    app = DaydreamApp(sim, model_label="slow fake", speed=30, save_path=tmp_path / "s.json")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.5)
        assert backend.calls, "a batch should be decoding"
        assert app.sim.pending, "decisions should be waiting on the model"
        start = time.perf_counter()
        await pilot.press("space")
        await pilot.press("plus")
        took = time.perf_counter() - start
        assert not app.running and app.speed == 60
        assert took < 1.0, f"key presses took {took:.2f} s while the model was busy"


async def test_help_screen_and_quit(tmp_path):
    app = rules_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert "inject an event" in str(app.screen.query_one("#help").render())
        await pilot.press("escape")
        await pilot.press("q")


def test_build_app_falls_back_to_rules_when_model_fails():
    app = build_app("town", "missing-model.gguf")
    assert app.notice and "could not load" in app.notice
    assert app.sim.service.model_id == "rules-v1"
    app.sim.service.close()


def test_snapshot_main_screen(snap_compare, tmp_path):
    app = rules_app(tmp_path, timings=False)
    assert snap_compare(app, terminal_size=(160, 48))


def test_snapshot_inspector(snap_compare, tmp_path):
    app = rules_app(tmp_path, timings=False)

    async def select(pilot):
        await pilot.press("down", "down", "down")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(160, 48), run_before=select)


def test_a_leftover_purpose_shows_as_acting_with_a_spinner(tmp_path):
    from characters import Motivation
    from demo.widgets import SPINNER, state_cell

    backend = FakeBackend()
    backend.release.clear()  # the next decision is still being made
    sim = Simulation.from_world("town", DecisionService(backend), seed=1, reflex=False)
    agent = sim.agents["Maya Lindqvist"]
    agent.motivation = Motivation(
        purpose_a="Maya opens the bakery for the morning customers, because the bread is ready.",
        purpose_b="Maya eats breakfast at the bakery counter, because the morning was long.",
        purpose_c="Maya walks down to the river to relax, because the week has been loud.",
    )
    agent.chosen, agent.spare = 0, [1, 2]
    sim.step(5)
    assert agent.action.provisional
    assert state_cell(agent, 3).plain == f"{SPINNER[3]} acting"
    others = [a for a in sim.agents.values() if a is not agent]
    assert all(state_cell(a, 3).plain == f"{SPINNER[3]} thinking" for a in others)
    agent.action.provisional = False
    assert state_cell(agent, 3).plain == "acting"
    backend.release.set()
    sim.service.close()


async def test_the_inspector_shows_a_first_reaction_while_the_model_decides(tmp_path):
    backend = FakeBackend()
    backend.release.clear()  # the first decisions are still being made
    sim = Simulation.from_world("town", DecisionService(backend), seed=1)
    sim.step(5)
    agent = sim.agents["Maya Lindqvist"]
    assert agent.decisions == 0 and agent.action.provisional
    app = DaydreamApp(
        sim, model_label="slow fake", running=False, save_path=tmp_path / "s.json", timings=False
    )
    async with app.run_test(size=(160, 48)) as pilot:
        app.selected = agent.name
        app.refresh_views()
        await pilot.pause()
        text = str(app.query_one("#inspector").render())
        assert "first reaction while deciding" in text and agent.action.purpose[:60] in text
    backend.release.set()
    sim.service.close()
