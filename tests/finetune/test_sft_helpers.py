"""The SFT run's helpers: the precision probe, the validation curve, a corpus read from another folder."""

import json
import shutil

import pytest

from finetune.config import DataConfig
from finetune.data.corpus import corpus_files
from finetune.data.dataset import DatasetError, build_dataset
from finetune.sft import probe_cpu_precision, validation_curve


def test_the_precision_probe_times_both_and_names_the_faster():
    choice, speedup = probe_cpu_precision(size=64, repeats=1)
    assert choice in ("bf16", "fp32") and speedup > 0
    assert (choice == "bf16") == (speedup > 1.2)  # bf16 only when clearly faster


def test_the_validation_curve_comes_from_the_train_log(tmp_path):
    log = tmp_path / "train_log.jsonl"
    rows = [
        {"step": 0, "eval_loss": 2.35, "epoch": 0},
        {"step": 5, "loss": 2.4, "epoch": 0.03},
        {"step": 20, "eval_loss": 1.659717, "epoch": 0.1336},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert validation_curve(log) == [
        {"step": 0, "epoch": 0.0, "eval_loss": 2.35},
        {"step": 20, "epoch": 0.134, "eval_loss": 1.6597},
    ]
    assert validation_curve(tmp_path / "missing.jsonl") == []


@pytest.mark.timeout(120)
def test_the_corpus_can_be_read_from_a_snapshot_folder(tmp_path):
    snapshot = tmp_path / "corpus"
    snapshot.mkdir()
    shutil.copy(corpus_files()[0], snapshot)
    cfg = DataConfig(n=0, corpus=True, corpus_dir=str(snapshot), out_dir=str(tmp_path / "data"))
    splits, summary = build_dataset(cfg, log=lambda line: None)
    lines = corpus_files()[0].read_text("utf-8").splitlines()
    assert summary["corpus"] == len([line for line in lines if line.strip()])
    assert sum(len(splits[name]) for name in ("train", "val", "test")) == summary["corpus"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="corpus_dir"):
        build_dataset(cfg.model_copy(update={"corpus_dir": str(empty)}), log=lambda line: None)
