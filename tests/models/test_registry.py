import json
import shutil
from pathlib import Path

import pytest

from daydream.cli import main
from models.registry import (
    ModelCorrupt,
    ModelNotBuilt,
    ModelNotFound,
    list_models,
    load_manifest,
    resolve_gguf,
)


def test_unknown_model_is_a_clear_error(capsys):
    with pytest.raises(ModelNotFound, match="no model 'nope' in the registry"):
        load_manifest("nope")
    assert main(["models", "verify", "nope"]) == 2
    assert "no model 'nope'" in capsys.readouterr().err


def test_list_runs_and_manifests_validate(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        manifest = load_manifest(name)
        assert name in out
        assert manifest.prompt_version and manifest.schema_version
        assert {e.path for e in manifest.adapter} >= {"adapter/adapter_model.safetensors"}


def test_invalid_manifest_names_the_file(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text(json.dumps({"name": "broken"}))
    with pytest.raises(ValueError, match=r"broken/manifest.json: invalid manifest"):
        load_manifest("broken", tmp_path)


def _copy_of_default(cache: Path) -> Path:
    manifest = load_manifest("default")
    try:
        built = resolve_gguf("default")
    except ModelNotBuilt as err:
        pytest.fail(f"{err} (make test builds it before running the suite)")
    target = cache / "models" / "default" / manifest.gguf.filename
    target.parent.mkdir(parents=True)
    shutil.copyfile(built, target)
    return target


@pytest.mark.skipif("default" not in list_models(), reason="no default model registered")
def test_wrong_sha256_or_truncated_gguf_is_a_clear_error(tmp_path, monkeypatch, capsys):
    target = _copy_of_default(tmp_path)
    monkeypatch.setenv("DAYDREAM_CACHE", str(tmp_path))
    assert resolve_gguf("default") == target
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the tensor data: same size, wrong sha256
    target.write_bytes(bytes(data))
    with pytest.raises(
        ModelCorrupt, match=r"sha256 does not match the manifest.*daydream models build default"
    ):
        resolve_gguf("default")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"name": "Ann", "description": "A nurse.", "situation": "Night."}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["decide", str(cases), "--out", str(out), "--model", "default"]) == 2
    assert "sha256 does not match the manifest" in capsys.readouterr().err
    assert not out.exists()
    target.write_bytes(bytes(data[: len(data) // 2]))  # truncated
    with pytest.raises(ModelCorrupt, match=r"bytes where the manifest says .* \(truncated"):
        resolve_gguf("default")
    assert main(["models", "verify", "default"]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
