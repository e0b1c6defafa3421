"""The training config's export settings."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from engine.backends.llamacpp import QUANT_CHOICES
from finetune.config import ExportSettings


@pytest.mark.timeout(30)
def test_export_accepts_every_quant_the_quantizer_knows_and_names_a_wrong_one() -> None:
    accepted = set(get_args(ExportSettings.model_fields["quant"].annotation))
    assert accepted == set(QUANT_CHOICES)
    for quant in QUANT_CHOICES:
        assert ExportSettings(quant=quant).quant == quant
    with pytest.raises(ValidationError, match="quant"):
        ExportSettings(quant="Q3_K_S")
