"""Register a trained adapter: merge -> GGUF -> quantize -> smoke check -> manifest, atomically.

    python -m finetune.export --adapter runs/default/adapter --name default [--quant Q4_K_M]

Everything is staged beside the registry and swapped in at the end, so a failed export leaves the
registry exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, get_args

from characters import SCHEMA_VERSION
from engine.prompt import PROMPT_VERSION
from finetune.config import QuantType
from models.base import BASE_MODELS, SMOLLM2_135M, sha256_file
from models.build import base_fingerprint, build_gguf, smoke_decision
from models.registry import (
    REGISTRY_DIR,
    BaseEntry,
    GGUFEntry,
    ModelManifest,
    built_gguf_path,
    file_entry,
    save_manifest,
    write_manifest,
)

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def copy_adapter(src: Path, dst: Path, base_name: str, dtype: str = "float16") -> None:
    """Copy the adapter files, with the machine-specific base path replaced by the base's name.

    ``float16`` halves the committed adapter; the GGUF is built from the stored adapter, so what
    is registered, what is committed and what a fresh machine rebuilds are the same weights.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        if not (src / name).exists():
            raise FileNotFoundError(f"{src / name}: adapter file missing")
    if dtype == "float32":
        shutil.copyfile(src / "adapter_model.safetensors", dst / "adapter_model.safetensors")
    else:
        import numpy as np
        from safetensors.numpy import load_file, save_file

        tensors = load_file(str(src / "adapter_model.safetensors"))
        cast = {k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()}
        save_file(cast, str(dst / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = json.loads((src / "adapter_config.json").read_text("utf-8"))
    config["base_model_name_or_path"] = base_name
    if isinstance(config.get("target_modules"), list):  # peft writes a set in arbitrary order
        config["target_modules"] = sorted(config["target_modules"])
    (dst / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")


def describe_base(spec: str) -> BaseEntry:
    """The manifest entry for a base spec (packaged name, GGUF path or HF directory)."""
    packaged = BASE_MODELS.get(spec) or (SMOLLM2_135M if spec in ("default", "base") else None)
    if packaged is not None:
        return BaseEntry(name=packaged.name, source=packaged.name, sha256=packaged.gguf_sha256,
                         package=packaged.package, version=packaged.version)  # fmt: skip
    path = Path(spec).resolve()
    return BaseEntry(name=path.stem, source=str(path), sha256=base_fingerprint(path))


def export_model(
    adapter_dir: Path,
    name: str,
    *,
    base_spec: str = SMOLLM2_135M.name,
    quant: str = "Q4_K_M",
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    registry: Path = REGISTRY_DIR,
    progress: Any = None,
    adapter_dtype: str = "float16",
    decoding: dict[str, Any] | None = None,
) -> ModelManifest:
    """Build and register ``name`` from an adapter; returns the written manifest."""
    registry.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=registry))
    staging.chmod(0o755)
    try:
        base = describe_base(base_spec)
        copy_adapter(adapter_dir, staging / "adapter", base.name, adapter_dtype)
        gguf_name = f"{name}-{quant}.gguf"
        scratch = Path(tempfile.mkdtemp(prefix="daydream-export-"))
        try:
            built = build_gguf(
                base.source, staging / "adapter", scratch / gguf_name,
                name=name, quant=quant, progress=progress,
            )  # fmt: skip
            smoke_decision(built)
            manifest = ModelManifest(
                name=name,
                created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                base=base,
                adapter=[file_entry(staging / "adapter" / f, staging) for f in ADAPTER_FILES],
                gguf=GGUFEntry(
                    filename=gguf_name, sha256=sha256_file(built), bytes=built.stat().st_size, quant=quant
                ),
                prompt_version=PROMPT_VERSION,
                schema_version=SCHEMA_VERSION,
                training=training or {},
                metrics=metrics or {},
                decoding=decoding or {},
            )
            write_manifest(manifest, staging / "manifest.json")
            target = built_gguf_path(manifest)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(built), target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        final = registry / name
        backup = registry / f".{name}.old"
        if final.exists():
            shutil.rmtree(backup, ignore_errors=True)
            final.rename(backup)
        staging.rename(final)
        shutil.rmtree(backup, ignore_errors=True)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def update_metrics(name: str, metrics: dict[str, Any], registry: Path = REGISTRY_DIR) -> None:
    """Replace a registered model's metrics (atomic rewrite of its manifest)."""
    from models.registry import load_manifest

    manifest = load_manifest(name, registry)
    save_manifest(manifest.model_copy(update={"metrics": metrics}), registry)


def main(argv: list[str] | None = None) -> int:
    """Export an adapter into the registry."""
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--quant", default="Q4_K_M", choices=get_args(QuantType))
    parser.add_argument("--training", type=Path, default=None, help="JSON file of training facts to record")
    args = parser.parse_args(argv)
    training = json.loads(args.training.read_text("utf-8")) if args.training else {}
    manifest = export_model(args.adapter, args.name, quant=args.quant, training=training,
                            progress=lambda s: print(f"export: {s}", file=sys.stderr))  # fmt: skip
    print(f"registered {manifest.model_id}: {built_gguf_path(manifest)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
