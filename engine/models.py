"""Resolve a model spec (a registry name, a GGUF path, an HF directory, 'rules') to a backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.backends.base import Backend
from engine.backends.rules import RulesBackend

# Where llama.cpp decodes: "thread" (in this process, on the backend's own thread) or "process"
# (a worker process: sampling never holds this process's GIL). bench.decisions measures both.
DEFAULT_ISOLATION = "thread"


class ModelSpecError(ValueError):
    """A model spec that names nothing Daydream can load; the message says what to do."""


# the backend options a manifest may set for its model (see ModelManifest.decoding)
_MANIFEST_DECODING = frozenset({"lead_in"})


def load_backend(spec: str, **options: object) -> Backend:
    """A backend for ``spec``.

    - ``rules``: the no-model fallback backend.
    - ``openai:URL[,URL...]``: OpenAI-compatible servers (llama.cpp, vLLM, Ollama), least pending first.
    - ``base``: the untuned base GGUF (SmolLM2-135M-Instruct), fetched if missing.
    - ``path/to/model.gguf``: that GGUF through llama.cpp.
    - ``hf:DIR`` or a directory with config.json: transformers (needs the finetune extra).
    - any other name: a model in the registry (models/NAME/manifest.json), built if needed.

    GGUF models take ``isolation="thread"|"process"`` (default ``DEFAULT_ISOLATION``) and the
    ``LlamaCppBackend`` keywords.
    """
    if spec == "rules":
        return RulesBackend()
    scheme, sep, _ = spec.partition(":")
    if sep and scheme in _SCHEMES:
        return _SCHEMES[scheme](spec, options)
    if spec == "base":
        from models.base import ensure_base_gguf

        return _llamacpp(ensure_base_gguf(verbose=True), "base-SmolLM2-135M-Instruct-Q4_1", options)
    path = Path(spec.removeprefix("hf:"))
    if spec.startswith("hf:") or (path.is_dir() and (path / "config.json").exists()):
        if not path.is_dir():
            raise ModelSpecError(f"{spec}: no such directory")
        from engine.backends.hf import TransformersBackend

        return TransformersBackend(path, **options)  # type: ignore[arg-type]
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ModelSpecError(f"{spec}: no such GGUF file")
        return _llamacpp(path, path.stem, options)
    from models.registry import ModelNotFound, load_manifest, resolve_gguf

    try:
        manifest = load_manifest(spec)
    except ModelNotFound as err:
        raise ModelSpecError(str(err)) from None
    unknown = set(manifest.decoding) - _MANIFEST_DECODING
    if unknown:
        raise ModelSpecError(f"{spec}: manifest decoding: unknown option(s) {', '.join(sorted(unknown))}")
    return _llamacpp(resolve_gguf(spec), manifest.model_id, {**manifest.decoding, **options})


def _openai(spec: str, options: dict[str, object]) -> Backend:
    try:
        from engine.backends.openai import OpenAIBackend, parse_urls
    except ImportError as err:
        raise ModelSpecError(
            f"{spec}: the remote backend needs httpx (pip install 'daydream[serve]')"
        ) from err
    try:
        urls = parse_urls(spec)
    except ValueError as err:
        raise ModelSpecError(str(err)) from None
    return OpenAIBackend(urls, **options)  # type: ignore[arg-type]


# Backends named by a "scheme:" prefix; a scheme is loaded only when a spec names it.
_SCHEMES: dict[str, Callable[[str, dict[str, object]], Backend]] = {"openai": _openai}


def _llamacpp(path: Path, model_id: str, options: dict[str, object]) -> Backend:
    options = dict(options)
    isolation = options.pop("isolation", DEFAULT_ISOLATION)
    if isolation == "process":
        from engine.backends.worker import WorkerBackend

        return WorkerBackend(path, model_id=model_id, **options)  # type: ignore[arg-type]
    if isolation != "thread":
        raise ModelSpecError(f"isolation must be 'thread' or 'process', not {isolation!r}")
    from engine.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(path, model_id=model_id, **options)  # type: ignore[arg-type]
