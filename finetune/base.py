"""Load a base model for training: a GGUF file (dequantized), an HF directory, or an HF id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_BASE = "SmolLM2-135M-Instruct"


def resolve_base(spec: str) -> tuple[Path | str, str | None]:
    """(directory or hub id, gguf file name or None) for a base spec."""
    if spec in (DEFAULT_BASE, "default", "base"):
        from models.base import ensure_base_gguf

        gguf = ensure_base_gguf(verbose=True)
        return gguf.parent, gguf.name
    path = Path(spec)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"{spec}: GGUF file not found")
        return path.parent, path.name
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{spec}: directory has no config.json")
        return path, None
    return spec, None  # an HF hub id; needs a reachable hub


def load_base(spec: str) -> tuple[Any, Any]:
    """(model, tokenizer) in fp32, ready to train or save.

    A model loaded from GGUF stays flagged as quantized and refuses ``save_pretrained``, so it is
    re-instantiated from its config and state dict.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, gguf_file = resolve_base(spec)
    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kwargs)
    if gguf_file:
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        clean.load_state_dict(model.state_dict(), strict=False)
        clean.tie_weights()
        model = clean
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_clean_pretrained(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """save_pretrained without a leftover GGUF quantization_config in config.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text("utf-8"))
    if config.pop("quantization_config", None) is not None:
        config_path.write_text(json.dumps(config, indent=2), "utf-8")
