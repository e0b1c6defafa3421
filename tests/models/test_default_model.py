"""The shipped default model, end to end through the real engine (built by `make test` if missing)."""

from difflib import SequenceMatcher

import pytest

from characters import normalize_purpose
from engine import DecisionService
from finetune.metrics import distinctness, words
from models.registry import ModelNotBuilt, list_models, resolve_gguf, verify_model
from tests.conftest import load_public_cases

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),  # the same bound as its ticket waits
    pytest.mark.skipif("default" not in list_models(), reason="no default model registered yet"),
]


@pytest.fixture(scope="module")
def service():
    try:
        resolve_gguf("default")
    except ModelNotBuilt as err:
        pytest.fail(f"{err} (make test builds it before running the suite)")
    svc = DecisionService(model="default", max_batch=8)
    yield svc
    svc.close()


def test_default_model_matches_its_manifest():
    assert verify_model("default") == []


def test_public_cases_are_valid_distinct_and_grounded(service):
    cases = load_public_cases()[:6]
    tickets = [service.submit(c.profile, c.situation, seed=i) for i, c in enumerate(cases)]
    results = [t.result(timeout=600) for t in tickets]
    from_model = [r for r in results if r.source in ("model", "retry")]
    assert len(from_model) >= 5, [r.reason for r in results]
    for case, result in zip(cases, results, strict=True):
        purposes = result.motivation.purposes()
        assert len({normalize_purpose(p) for p in purposes}) == 3
        if result.source in ("model", "retry"):
            # the engine's name-anchored grammar: the exact name, never a near miss
            assert all(case.profile.name in p for p in purposes), (case.profile.name, purposes)
    spread = [
        distinctness(r.motivation.purposes(), c.profile.name) for c, r in zip(cases, results, strict=True)
    ]
    assert sum(spread) / len(spread) >= 0.7, spread  # the evaluation measured 0.90 on all public cases


FIRE_WORDS = {"fire", "smoke", "smoky", "flame", "flames", "burning", "burns", "blaze", "extinguisher", "ash"}


def mentions_fire(purpose: str) -> bool:
    return bool(set(words(purpose)) & FIRE_WORDS)


def test_a_fire_at_the_bakery_is_what_the_people_near_it_decide_about(service):
    """The bug users see first: a fire in the bakery, and the baker goes to work as usual.

    The fire is injected at the bakery; it reaches everyone there and in the square next to it,
    interrupts them, and most of their next decisions must be about the fire.
    """
    from engine.sim.simulation import Simulation
    from engine.sim.world import load_world

    spec, cast = load_world("town")
    sim = Simulation(spec, cast, DecisionService("rules"), seed=3, lockstep=True)
    sim.step(30)
    names = sorted(sim.agents)
    for name, place in zip(names, ["Bakery", "Town Square", "Clinic"] * 3, strict=False):
        sim.agents[name].place = place
    sim.service = service  # the model decides from here on
    text = "A fire breaks out at the bakery and smoke pours into the square"
    reached = sim.inject_event(text, place="Bakery", importance=9)
    assert len(reached) == 6  # three at the bakery, three in the square next door
    results = {name: sim.pending[name].ticket.result(timeout=600) for name in reached}
    about_fire = {name: [mentions_fire(p) for p in r.motivation.purposes()] for name, r in results.items()}
    deciding = [name for name, hits in about_fire.items() if any(hits)]
    assert len(deciding) > len(reached) / 2, {n: r.motivation.purposes() for n, r in results.items()}
    first = sum(hits[0] for hits in about_fire.values())
    assert first >= len(reached) / 2, about_fire  # and it is their most likely action, not an afterthought


# Corpus test-split cases where default-v3, unsteered, wrote the name twice in a purpose
# ("the lady Chiyo needs", "a cut Emre has never done", "the round Njeri needs", "Hana Kim's").
ECHOED = ("historical-112", "modern-008", "office-045", "school-027")


def test_steering_keeps_the_name_single_and_the_purposes_apart():
    from characters import name_echo
    from engine.models import load_backend
    from engine.request import DecisionRequest, Sampling
    from finetune.data.corpus import load_corpus

    examples = {ex.id: ex for ex in load_corpus(split="test") if ex.id in ECHOED}
    assert sorted(examples) == sorted(ECHOED)
    requests = [
        DecisionRequest(ex.profile, ex.situation, Sampling(temperature=0.7, seed=i, max_new_tokens=256))
        for i, ex in enumerate(examples[k] for k in ECHOED)
    ]
    # v3 has the habit steering is for (it echoed the name on these cases); v4, trained on
    # name-first plain references, shows none on them, so the steering is tested on default-v3
    backend = load_backend("default-v3", isolation="thread", max_batch=4)

    def generate():
        backend.clear_prefix_cache()  # a warm cache moves a quantized model's low bits (see tests/engine)
        return backend.generate(requests)

    try:
        steered = [generate(), generate()]
        backend.configure_steering(penalty=0.0, ban_name_echo=False)
        plain = generate()
    finally:
        backend.close()

    def purposes(raws):
        return [_loose(r.text) for r in raws]

    assert [r.text for r in steered[0]] == [r.text for r in steered[1]]  # repeatable
    on, off = purposes(steered[0]), purposes(plain)
    names = [r.profile.name for r in requests]
    echoes_off = sum(name_echo(p, n) for ps, n in zip(off, names, strict=True) for p in ps)
    echoes_on = [p for ps, n in zip(on, names, strict=True) for p in ps if name_echo(p, n)]
    assert echoes_off >= 1, off  # the fixture still shows the habit steering is for
    assert echoes_on == []
    # and no near miss in its place ("Nijeri Guthoni"): the ban must not teach it to misspell
    for ps, name in zip(on, names, strict=True):
        for purpose in ps:
            after = purpose.split(name, 1)[1]
            for word in words(after):
                # a misspelt name keeps its first letter ("Nijeri" for Njeri); "more" is no "Emre"
                near = [
                    w
                    for w in name.lower().split()
                    if word[:1] == w[:1] and SequenceMatcher(None, word, w).ratio() >= 0.75
                ]
                assert not near, (word, purpose)
    spread_on = sum(distinctness(ps, n) for ps, n in zip(on, names, strict=True)) / len(on)
    spread_off = sum(distinctness(ps, n) for ps, n in zip(off, names, strict=True)) / len(off)
    assert spread_on > spread_off + 0.05, (spread_on, spread_off)


def _loose(text):
    import json

    data = json.loads(text)
    return [data["purpose_a"], data["purpose_b"], data["purpose_c"]]
