"""Training and inference must see the same prompt, byte for byte."""

import pytest

import engine.prompt
import finetune.data.dataset as dataset
from engine.backends.llamacpp import LlamaCppBackend
from engine.request import DecisionRequest
from finetune.data.generator import generate_examples
from finetune.sft import build_prompt_completion
from models.base import ensure_base_gguf
from tests.conftest import load_public_cases


def test_finetune_builds_messages_with_the_engine_function():
    assert dataset.build_training_messages is engine.prompt.build_training_messages
    ex = generate_examples(1, seed=3)[0]
    record = dataset.build_messages_record(ex)
    row = build_prompt_completion([record])[0]
    assert row["prompt"] == engine.prompt.build_messages(ex.profile, ex.situation)
    assert row["completion"][0]["content"] == ex.motivation.model_dump_json()


@pytest.mark.slow
@pytest.mark.timeout(180)  # loads the HF tokenizer from the GGUF
def test_gguf_template_and_hf_tokenizer_render_identical_prompts():
    from transformers import AutoTokenizer

    from finetune.base import resolve_base

    where, gguf = resolve_base("SmolLM2-135M-Instruct")
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=gguf)
    backend = LlamaCppBackend(ensure_base_gguf(), max_batch=1)
    cases = load_public_cases()[:3] + [
        type("C", (), {"profile": e.profile, "situation": e.situation})()
        for e in generate_examples(3, seed=5)
    ]
    for case in cases:
        request = DecisionRequest(case.profile, case.situation)
        hf = tokenizer.apply_chat_template(
            engine.prompt.build_messages(case.profile, case.situation),
            tokenize=False,
            add_generation_prompt=True,
        )
        assert backend.render_prompt(request) == hf
    backend.close()
