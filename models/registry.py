"""The model registry: ``models/<name>/manifest.json`` plus a committed adapter.

Merged GGUFs are never committed; they are rebuilt from the base + adapter into the cache and
checked against the manifest's sha256.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.base import cache_dir, sha256_file

REGISTRY_DIR = Path(__file__).parent


class ModelNotFound(LookupError):
    """No manifest for that model name."""


class ModelNotBuilt(FileNotFoundError):
    """The manifest exists but its GGUF has not been built on this machine."""


class ModelCorrupt(ModelNotBuilt):
    """The built GGUF is there but its size or sha256 differs from the manifest's."""


class FileEntry(BaseModel):
    """A file with its hash and size."""

    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class BaseEntry(BaseModel):
    """The base model the adapter was trained on: a packaged base, or a local file/directory."""

    model_config = ConfigDict(extra="forbid")
    name: str
    source: str = Field(description="packaged base name, GGUF path or HF directory")
    sha256: str = Field(description="sha256 of the base GGUF, or of the directory's weights file")
    package: str | None = None
    version: str | None = None


class GGUFEntry(BaseModel):
    """The merged, quantized GGUF that ``build`` must reproduce."""

    model_config = ConfigDict(extra="forbid")
    filename: str
    sha256: str
    bytes: int
    quant: str
    model_name: str | None = Field(
        default=None,
        description="the name written into the GGUF's metadata (default: the manifest's name); a "
        "renamed model keeps the name it was built under, and so its exact bytes",
    )


class ModelManifest(BaseModel):
    """Everything needed to rebuild, verify and describe one registered model."""

    model_config = ConfigDict(extra="forbid")
    name: str
    created: str
    base: BaseEntry
    adapter: list[FileEntry]
    gguf: GGUFEntry
    prompt_version: str
    schema_version: str
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    decoding: dict[str, Any] = Field(
        default_factory=dict,
        description="backend options this model was trained for, e.g. {'lead_in': false}: every purpose "
        "starts with the name, as in its training data (explicit options still win)",
    )
    notes: str = ""

    @property
    def model_id(self) -> str:
        """A short id that changes whenever the weights change."""
        return f"{self.name}-{self.gguf.quant}-{self.gguf.sha256[:8]}"


def model_dir(name: str, registry: Path = REGISTRY_DIR) -> Path:
    """The registry folder of a model."""
    return registry / name


def list_models(registry: Path = REGISTRY_DIR) -> list[str]:
    """Names of the registered models."""
    return sorted(p.parent.name for p in registry.glob("*/manifest.json"))


def load_manifest(name: str, registry: Path = REGISTRY_DIR) -> ModelManifest:
    """Read and validate a model's manifest."""
    path = model_dir(name, registry) / "manifest.json"
    if not path.exists():
        known = ", ".join(list_models(registry)) or "none"
        raise ModelNotFound(f"no model {name!r} in the registry (known: {known})")
    try:
        return ModelManifest.model_validate_json(path.read_text("utf-8"))
    except ValidationError as err:
        raise ValueError(f"{path}: invalid manifest: {err}") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temp file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename: a power cut leaves old or new, never empty
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary project files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(manifest: ModelManifest, path: Path) -> Path:
    """Write a manifest to ``path`` atomically."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"
    write_atomic(path, text.encode("utf-8"))
    return path


def save_manifest(manifest: ModelManifest, registry: Path = REGISTRY_DIR) -> Path:
    """Write the model's ``manifest.json`` in the registry atomically."""
    return write_manifest(manifest, model_dir(manifest.name, registry) / "manifest.json")


def built_gguf_path(manifest: ModelManifest) -> Path:
    """Where the built GGUF of a manifest lives on this machine."""
    return cache_dir() / "models" / manifest.name / manifest.gguf.filename


def file_entry(path: Path, root: Path) -> FileEntry:
    """Hash and size of a file, with its path relative to ``root``."""
    return FileEntry(path=str(path.relative_to(root)), sha256=sha256_file(path), bytes=path.stat().st_size)


def verify_model(name: str, registry: Path = REGISTRY_DIR, *, gguf: Path | None = None) -> list[str]:
    """Problems found re-hashing a model's adapter and built GGUF (empty list: all good)."""
    manifest = load_manifest(name, registry)
    root = model_dir(name, registry)
    problems = []
    for entry in manifest.adapter:
        path = root / entry.path
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{path}: sha256 mismatch (corrupted or changed)")
    target = gguf or built_gguf_path(manifest)
    if not target.exists():
        problems.append(f"{target}: not built (run `daydream models build {name}`)")
    elif target.stat().st_size != manifest.gguf.bytes or sha256_file(target) != manifest.gguf.sha256:
        problems.append(f"{target}: sha256 mismatch against the manifest (corrupted or a different build)")
    return problems


def resolve_gguf(name: str, registry: Path = REGISTRY_DIR) -> Path:
    """The verified GGUF for a registered model; raises ModelNotBuilt with the command to run.

    Size and sha256 are both checked (hashing the 105 MB default takes about 0.15 s), so a
    truncated, corrupted or foreign file is a clear error here, never a load of unknown bytes.
    """
    manifest = load_manifest(name, registry)
    path = built_gguf_path(manifest)
    if not path.exists():
        raise ModelNotBuilt(f"model {name!r} is not built yet: run `daydream models build {name}`")
    rebuild = f"rebuild with `daydream models build {name}`"
    size = path.stat().st_size
    if size != manifest.gguf.bytes:
        raise ModelCorrupt(
            f"{path}: {size} bytes where the manifest says {manifest.gguf.bytes} (truncated or another "
            f"build); {rebuild}"
        )
    if sha256_file(path) != manifest.gguf.sha256:
        raise ModelCorrupt(
            f"{path}: sha256 does not match the manifest (corrupted or another build); {rebuild}"
        )
    return path
