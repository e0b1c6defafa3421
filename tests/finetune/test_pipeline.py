"""End to end on a tiny llama: generate -> SFT 2 steps -> DPO 1 step -> merge -> GGUF -> quantize ->
llama.cpp decision -> manifest -> verify -> rebuild."""

import json
import shutil

import jsonschema
import pytest
import torch
from safetensors.numpy import load_file

from characters import motivation_json_schema
from finetune.config import DataConfig, DPOSettings, RunConfig, SFTSettings
from finetune.data.dataset import save_dataset, split_examples
from finetune.data.generator import generate_examples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # trains, merges and quantizes a tiny model


@pytest.fixture(scope="module")
def trained(tiny_base, tmp_path_factory):
    from finetune.sft import run_sft

    root = tmp_path_factory.mktemp("run")
    cfg = RunConfig(
        base=str(tiny_base),
        output_dir=str(root / "run"),
        progress=False,
        data=DataConfig(n=40, seed=3, out_dir=str(root / "data")),
        sft=SFTSettings(max_steps=2, batch_size=2, grad_accum=1, eval_samples=4, save_steps=1,
                        learning_rate=5e-3, warmup_steps=0, max_length=384, resume=None),
        dpo=DPOSettings(enabled=True, pairs=4, max_steps=1, batch_size=2, grad_accum=1),
    )  # fmt: skip
    examples = generate_examples(cfg.data.n, cfg.data.seed)
    save_dataset(examples, root / "data")
    summary = run_sft(cfg)
    return cfg, summary, examples, root


def lora_b_norms(adapter_dir):
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    return {k: float((v.astype("float64") ** 2).sum()) for k, v in tensors.items() if "lora_B" in k}


def test_sft_moves_lora_weights_and_checkpoints(trained):
    _, summary, _, root = trained
    norms = lora_b_norms(root / "run" / "adapter")
    assert norms, "no LoRA B matrices saved"
    # LoRA B starts at zero: any non-zero norm means the optimizer moved it
    assert sum(1 for n in norms.values() if n > 0) == len(norms)
    assert summary["steps"] == 2
    assert (root / "run" / "checkpoints" / "checkpoint-2").is_dir()
    log = [json.loads(line) for line in (root / "run" / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_loss" in row for row in log)
    assert summary["eval_loss_before"] > 0 and summary["eval_loss_after"] > 0


def test_dpo_continues_the_sft_adapter(trained):
    from finetune.dpo import run_dpo

    cfg, _, examples, root = trained
    before = lora_b_norms(root / "run" / "adapter")
    summary = run_dpo(cfg, root / "run" / "adapter", split_examples(examples)["train"])
    after = lora_b_norms(root / "run" / "dpo" / "adapter")
    assert summary["steps"] == 1 and summary["pairs"] == 4
    if not torch.cuda.is_available():
        assert summary["precision"] == "fp32"  # trl's bf16 default makes CPU steps ~9x slower
    assert after.keys() == before.keys()
    assert any(abs(after[k] - before[k]) > 0 for k in before)


def test_export_builds_verified_gguf_that_decides(trained, tmp_path, monkeypatch):
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.request import DecisionRequest, Sampling
    from finetune.export import export_model
    from models.build import build_model
    from models.registry import built_gguf_path, load_manifest, verify_model

    cfg, _, examples, root = trained
    monkeypatch.setenv("DAYDREAM_CACHE", str(tmp_path / "cache"))
    registry = tmp_path / "registry"
    manifest = export_model(root / "run" / "adapter", "tiny", base_spec=cfg.base, quant="Q4_K_M",
                            training={"steps": 2}, registry=registry)  # fmt: skip
    assert load_manifest("tiny", registry) == manifest
    assert manifest.base.source == str(cfg.base) and manifest.gguf.quant == "Q4_K_M"
    assert {e.path for e in manifest.adapter} == {
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
    }
    assert verify_model("tiny", registry) == []
    stored = load_file(str(registry / "tiny" / "adapter" / "adapter_model.safetensors"))
    assert {str(v.dtype) for v in stored.values()} == {"float16"}  # half the size in git

    gguf = built_gguf_path(manifest)
    backend = LlamaCppBackend(gguf, max_batch=1, n_ctx_per_seq=1400)
    ex = examples[0]
    raw = backend.generate(
        [DecisionRequest(ex.profile, ex.situation, Sampling(temperature=0.0, max_new_tokens=900))]
    )[0]
    backend.close()
    assert raw.error is None
    jsonschema.validate(json.loads(raw.text), motivation_json_schema())

    # rebuilding from base + adapter reproduces the registered GGUF bit for bit
    gguf.unlink()
    path, _, _ = build_model("tiny", registry=registry)
    assert path == gguf and verify_model("tiny", registry) == []

    # the same model as merged HF weights, what vLLM serves (daydream models build --merged DIR)
    from transformers import AutoModelForCausalLM

    from models.build import write_merged

    merged = write_merged("tiny", tmp_path / "hf" / "tiny", registry=registry)
    assert (merged / "tokenizer.json").exists() and not (tmp_path / "hf" / ".tiny.partial").exists()
    assert AutoModelForCausalLM.from_pretrained(merged).config.num_hidden_layers == 2

    # a corrupted GGUF or adapter fails verify loudly
    data = bytearray(gguf.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gguf.write_bytes(bytes(data))
    assert any("sha256 mismatch" in p for p in verify_model("tiny", registry))
    adapter = registry / "tiny" / "adapter" / "adapter_config.json"
    adapter.write_text(adapter.read_text() + " ")
    assert any("adapter_config.json: sha256 mismatch" in p for p in verify_model("tiny", registry))


def test_failed_export_leaves_registry_as_it_was(trained, tmp_path, monkeypatch):
    from finetune.export import export_model

    cfg, _, _, root = trained
    monkeypatch.setenv("DAYDREAM_CACHE", str(tmp_path / "cache"))
    registry = tmp_path / "registry"
    (registry / "tiny").mkdir(parents=True)
    (registry / "tiny" / "manifest.json").write_text('{"sentinel": true}')
    broken = tmp_path / "broken-adapter"
    shutil.copytree(root / "run" / "adapter", broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(Exception, match=r"(?i)safetensors|header|deserializ"):
        export_model(broken, "tiny", base_spec=cfg.base, registry=registry)
    assert (registry / "tiny" / "manifest.json").read_text() == '{"sentinel": true}'
    assert [p.name for p in registry.iterdir()] == ["tiny"]


def test_adopting_an_earlier_checkpoint_writes_an_honest_summary(trained):
    from finetune.sft import finalize_checkpoint

    cfg, _, _, root = trained
    summary = finalize_checkpoint(cfg, 1)
    assert summary["steps"] == 1 and summary["planned_steps"] == 2
    assert summary["examples_seen"] == cfg.sft.batch_size * cfg.sft.grad_accum
    assert "checkpoint-1 of 2" in summary["stopped_early"]
    assert summary["eval_loss_after"] > 0
    assert (root / "run" / "adapter" / "adapter_model.safetensors").exists()
