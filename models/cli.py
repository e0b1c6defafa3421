"""``daydream models list | verify | build``."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from models.base import sha256_file
from models.registry import (
    ModelNotFound,
    built_gguf_path,
    list_models,
    load_manifest,
    verify_model,
)

_BUILD_STAGES = 8


def run_models(args: argparse.Namespace) -> int:
    """Dispatch a models subcommand; returns the exit status."""
    action = args.models_command
    if action == "list":
        names = list_models()
        if not names:
            print("no models registered")
        for name in names:
            m = load_manifest(name)
            built = built_gguf_path(m)
            state = "built" if built.exists() else "not built"
            metrics = ", ".join(f"{k}={v}" for k, v in list(m.metrics.get("summary", {}).items())[:4])
            print(
                f"{name:12} {m.model_id:28} {m.gguf.quant:7} {m.gguf.bytes / 1e6:6.1f} MB  {state:9} {metrics}"
            )
        return 0
    try:
        if action == "verify":
            problems = verify_model(args.name)
            for problem in problems:
                print(f"FAIL {problem}", file=sys.stderr)
            if problems:
                return 1
            print(f"ok: {args.name} adapter and GGUF match the manifest")
            return 0
        if action == "build":
            return _build(args)
    except ModelNotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    raise AssertionError(action)


def _build(args: argparse.Namespace) -> int:
    from models.build import BuildError, build_model, write_modelfile

    manifest = load_manifest(args.name)
    target = built_gguf_path(manifest)
    if args.if_missing and target.exists() and not getattr(args, "merged", None):
        if sha256_file(target) == manifest.gguf.sha256:
            print(f"{args.name}: already built at {target}")
            return 0
        print(f"{args.name}: {target} does not match the manifest's sha256; rebuilding", file=sys.stderr)
    bar = tqdm(total=_BUILD_STAGES, desc=f"building {args.name}", unit="stage", file=sys.stderr)

    def progress(stage: str) -> None:
        bar.set_postfix_str(stage)
        bar.update(1)

    try:
        path, manifest, seconds = build_model(args.name, force=not args.if_missing, progress=progress)
    except BuildError as err:
        bar.close()
        print(f"error: build of {args.name} failed: {err}", file=sys.stderr)
        return 1
    bar.update(_BUILD_STAGES - bar.n)
    bar.close()
    print(
        f"built {path} ({manifest.gguf.quant}, sha256 {manifest.gguf.sha256[:12]}… verified) in {seconds:.0f} s"
    )
    if args.ollama:
        print(f"wrote {write_modelfile(path, manifest)}")
    if getattr(args, "merged", None):
        from pathlib import Path

        from models.build import write_merged

        print(f"wrote {write_merged(args.name, Path(args.merged))} (merged HF weights, e.g. for vLLM)")
    return 0
