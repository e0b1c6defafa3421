"""bench.quant's choice of quant type: release bars first, then speed, and no switch for noise."""

from __future__ import annotations

from typing import Any

import pytest

from bench.quant import bar_misses, recommend

GOOD = {
    "valid_first_try": 1.0, "name_grounding": 1.0, "situation_grounding": 0.9, "stock_rate": 0.0,
    "name_echo": 0.0, "invented_names": 0.0, "duplicate_rate": 0.0, "distinctness": 0.93,
}  # fmt: skip


def row(**changes: float) -> dict[str, Any]:
    return {"quality": {"public_cases": dict(GOOD), "corpus_test": {**GOOD, **changes}}}


def speed(**ms: float) -> dict[str, dict[str, float]]:
    return {q: {"ms_per_output_token": v} for q, v in ms.items()}


@pytest.mark.timeout(30)
def test_a_faster_type_that_misses_a_release_bar_is_not_chosen() -> None:
    rows = {"Q4_0": row(invented_names=0.025), "Q4_K_M": row()}
    assert bar_misses(rows["Q4_0"]["quality"]) == ["corpus_test.invented_names 0.025 (bar <= 0.02)"]
    choice, notes = recommend(rows, speed(Q4_0=18.5, Q4_K_M=24.7), current="Q4_K_M")
    assert choice == "Q4_K_M"
    assert any(n.startswith("Q4_0: misses the release bars") for n in notes)


@pytest.mark.timeout(30)
def test_a_clearly_faster_type_that_meets_the_bars_replaces_the_registered_one() -> None:
    rows = {"Q4_0": row(), "Q4_K_M": row(), "Q8_0": row(valid_first_try=0.99)}
    assert recommend(rows, speed(Q4_0=18.5, Q4_K_M=24.7, Q8_0=10.0), current="Q4_K_M")[0] == "Q4_0"


@pytest.mark.timeout(30)
def test_a_gain_within_noise_keeps_the_registered_type() -> None:
    rows = {"Q8_0": row(), "Q4_K_M": row()}
    choice, notes = recommend(rows, speed(Q8_0=24.0, Q4_K_M=24.7), current="Q4_K_M")
    assert choice == "Q4_K_M" and "keep Q4_K_M" in notes[-1]


@pytest.mark.timeout(30)
def test_no_type_meeting_the_bars_keeps_the_registered_one() -> None:
    rows = {"Q4_0": row(name_echo=0.01), "Q4_K_M": row(stock_rate=0.2)}
    choice, notes = recommend(rows, speed(Q4_0=18.5, Q4_K_M=24.7), current="Q4_K_M")
    assert choice == "Q4_K_M" and notes[-1] == "no type meets the release bars: keep Q4_K_M"
