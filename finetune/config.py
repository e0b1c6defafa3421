"""Typed run configuration: one YAML per run, ``key=value`` overrides on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class TeacherSettings(BaseModel):
    """An OpenAI-compatible chat endpoint that writes or rewrites reference motivations."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="server root, /v1 base, or full /v1/chat/completions URL")
    model: str = "teacher"
    mode: Literal["write", "rewrite"] = "rewrite"
    api_key_env: str | None = "OPENAI_API_KEY"  # the key is read from this variable, never from a file
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=400, ge=64)
    timeout_s: float = Field(default=60.0, gt=0)
    attempts: int = Field(default=2, ge=1)  # per example; a failed answer keeps the generator's reference
    workers: int = Field(default=4, ge=1)
    json_schema: bool = True  # send response_format=json_schema (llama.cpp server, vLLM, OpenAI)


class DataConfig(BaseModel):
    """Generated data: how many examples, from which seed, written where."""

    model_config = ConfigDict(extra="forbid")
    n: int = Field(default=2600, ge=0, description="examples generated before the 80/10/10 split")
    seed: int = 1
    generator: Literal["situational", "procedural"] = Field(
        default="situational",
        description="situational: generator v2 (every purpose answers the moment); procedural: v1",
    )
    corpus: bool = Field(
        default=True,
        description="add the hand-written corpus (finetune/data/corpus): its train part to train, its "
        "test part as test.jsonl, the main test set",
    )
    corpus_dir: str | None = Field(
        default=None,
        description="read the corpus from this folder of <genre>.jsonl files (default: the shipped one)",
    )
    ground_others: bool = Field(
        default=True, description="references never name a related person the prompt leaves out"
    )
    out_dir: str = "data/default"
    extra_sharegpt: list[str] = Field(default_factory=list, description="seed-format files to add to train")
    teacher: TeacherSettings | None = None


class SFTSettings(BaseModel):
    """LoRA / QLoRA SFT knobs."""

    model_config = ConfigDict(extra="forbid")
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    qlora: bool = True
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 2
    learning_rate: float = 3e-4
    warmup_steps: int = 5
    neftune_noise_alpha: float | None = 5.0
    max_length: int = 512
    gradient_checkpointing: bool = False  # recomputes activations: saves memory, costs time on CPU
    logging_steps: int = 5
    save_steps: int = 20
    eval_steps: int | None = Field(
        default=None,
        ge=1,
        description="measure validation loss every N steps (the curve); None: only at the ends",
    )
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        description="stop after N evaluations without a lower validation loss; keep the best",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="CPU training precision; auto times one matmul each way at start-up"
    )
    eval_samples: int = 96
    train_samples: int | None = None
    resume: str | None = "auto"


class DPOSettings(BaseModel):
    """Optional preference stage after SFT."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    beta: float = 0.1
    pairs: int = 400
    rejected_model: str | None = Field(
        default=None,
        description="a model (registry name or GGUF) whose own weak answers become rejected sides (on-policy)",
    )
    rejected_threshold: float = Field(default=0.75, ge=0, le=1, description="distinctness below this is weak")
    rejected_file: str | None = Field(
        default=None,
        description="JSONL of {id, text}: a model's answers already collected (python -m finetune.dpo "
        "CONFIG --collect-only writes it), so DPO can run where llama.cpp is not installed",
    )
    own_share: float = Field(
        default=1.0, ge=0, le=1, description="share of the pairs offered to rejected_model's own answers"
    )
    kinds: list[str] | None = Field(
        default=None, description="synthetic rejected kinds in rotation (default: the original six)"
    )
    chosen_from: Literal["any", "corpus"] = Field(
        default="any", description="corpus: chosen sides only from the hand-written corpus"
    )
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    grad_accum: int = 2
    learning_rate: float = 5e-5


# llama.cpp's types and the mixes of them that quantize_gguf knows (QUANT_CHOICES)
QuantType = Literal["Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q8_0", "F16", "Q5_0", "IQ4_NL", "Q4_K_M-IQ4"]


class ExportSettings(BaseModel):
    """Merge, convert and quantize."""

    model_config = ConfigDict(extra="forbid")
    quant: QuantType = Field(
        default="Q4_K_M", description="llama.cpp quant type; `python -m bench.quant` measures them"
    )
    adapter_dtype: Literal["float16", "float32"] = "float16"  # float16 halves the committed adapter
    register_as: str | None = None
    decoding: dict[str, Any] = Field(
        default_factory=dict, description="backend options written into the manifest, e.g. {lead_in: false}"
    )


class EvalSettings(BaseModel):
    """What to evaluate the exported model on."""

    model_config = ConfigDict(extra="forbid")
    test_samples: int = 60
    cases: list[str] = Field(default_factory=list)
    case_samples: int = Field(
        default=3, ge=1, description="samples per case-file case, each with its own seed"
    )
    compare_base: bool = True


class RunConfig(BaseModel):
    """One fine-tuning run: data -> SFT -> (DPO) -> eval -> export."""

    model_config = ConfigDict(extra="forbid")
    name: str = "default"
    base: str = "SmolLM2-135M-Instruct"
    output_dir: str = "runs/default"
    seed: int = 0
    progress: bool = True
    data: DataConfig = DataConfig()
    sft: SFTSettings = SFTSettings()
    dpo: DPOSettings = DPOSettings()
    eval: EvalSettings = EvalSettings()
    export: ExportSettings = ExportSettings()


class ConfigError(ValueError):
    """A config file or override that does not validate; names the file and key."""


def _set_path(data: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        if node.get(key) is None:  # `teacher: null` in the YAML becomes a section on override
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {key} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a YAML run config and apply ``section.key=value`` overrides."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        _set_path(data, key.strip(), value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"{path}: {where}") from None
