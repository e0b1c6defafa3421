"""Fixtures for pipeline tests: a tiny llama (2 layers, hidden 64) with the base tokenizer."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from finetune.base import resolve_base, save_clean_pretrained

    where, gguf_file = resolve_base("SmolLM2-135M-Instruct")
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=gguf_file)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny") / "tiny-llama"
    save_clean_pretrained(model, tokenizer, out)
    return out
