import json

import pytest

from daydream.cli import main
from models.registry import ModelNotFound, list_models, load_manifest


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
