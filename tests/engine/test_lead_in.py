"""Without a lead-in, every purpose starts with the character's exact name (the plain style's shape)."""

import json

import pytest

from engine.backends.llamacpp import LlamaCppBackend, build_grammar_text
from engine.request import DecisionRequest, Sampling
from models.base import ensure_base_gguf
from models.registry import ModelManifest, load_manifest
from tests.conftest import load_public_cases


def test_grammar_without_lead_in_has_the_name_first_and_no_lead_rule():
    name = "Captain Ines Vela"
    plain = build_grammar_text(name, lead_in=False)
    assert "anchor-lead" not in plain
    assert plain.count('"\\"" (anchor-name char{') == 3  # each purpose opens with the name
    assert f"anchor-name char{{0,{200 - len(name)}}})" in plain
    with_lead = build_grammar_text(name)
    assert with_lead.count("anchor-lead anchor-name") == 3


@pytest.mark.timeout(180)
def test_the_base_model_starts_every_purpose_with_the_name_without_lead_in():
    backend = LlamaCppBackend(ensure_base_gguf(), max_batch=4, lead_in=False)
    try:
        cases = load_public_cases()[:4]
        reqs = [
            DecisionRequest(c.profile, c.situation, Sampling(temperature=0.9, seed=7, max_new_tokens=160))
            for c in cases
        ]
        raws = backend.generate(reqs)
    finally:
        backend.close()
    started = 0
    for request, raw in zip(reqs, raws, strict=True):
        assert raw.error is None, raw.error
        # the base may run out of tokens mid-answer; every purpose it began opens with the name
        for key in ("purpose_a", "purpose_b", "purpose_c"):
            marker = f'"{key}"'
            if marker in raw.text:
                value = (
                    raw.text.split(marker, 1)[1].split('"', 2)[1]
                    if raw.text.split(marker, 1)[1].count('"') >= 2
                    else ""
                )
                if value:
                    assert value.startswith(request.profile.name), raw.text
                    started += 1
    assert started >= 4


def test_a_manifest_s_decoding_reaches_the_backend_and_unknown_options_are_refused(monkeypatch):
    import engine.models
    import models.registry
    from engine.models import ModelSpecError, load_backend

    data = json.loads(load_manifest("default").model_dump_json())
    seen = {}
    monkeypatch.setattr(models.registry, "resolve_gguf", lambda name: f"/models/{name}.gguf")
    monkeypatch.setattr(
        engine.models, "_llamacpp", lambda path, model_id, options: seen.update(options) or "backend"
    )

    def manifest_with(decoding):
        monkeypatch.setattr(
            models.registry,
            "load_manifest",
            lambda name: ModelManifest.model_validate({**data, "decoding": decoding}),
        )

    manifest_with({"lead_in": False})
    assert load_backend("default") == "backend" and seen == {"lead_in": False}
    seen.clear()
    assert load_backend("default", lead_in=True) == "backend" and seen == {"lead_in": True}  # the caller wins
    manifest_with({"temperature": 0.2})
    with pytest.raises(ModelSpecError, match=r"unknown option.*temperature"):
        load_backend("default")
