"""The transformers backend: an HF model directory (optionally with a peft adapter).

For evaluation and comparison, not for games: it runs fp32 generate without a grammar, so its
outputs go through the same validation chain and fall back like any other. torch, transformers and
peft are imported here, inside the constructor, so that importing the engine stays light.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.prompt import build_messages
from engine.request import DecisionRequest, RawDecision


class TransformersBackend:
    """Batched ``generate`` with left padding on a local HF directory."""

    name = "transformers"

    def __init__(
        self,
        path: str | Path,
        *,
        adapter: str | Path | None = None,
        gguf_file: str | None = None,
        model_id: str | None = None,
        max_batch: int = 16,
        threads: int | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.path = Path(path)
        self.model_id = model_id or f"hf:{self.path.name}"
        self.max_batch = max_batch
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, **kwargs)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model: Any = AutoModelForCausalLM.from_pretrained(self.path, dtype=torch.float32, **kwargs)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
        self.model = model.eval()
        self._torch = torch

    def render_prompt(self, request: DecisionRequest) -> str:
        """The prompt through the tokenizer's chat template."""
        text = self.tokenizer.apply_chat_template(
            build_messages(request.profile, request.situation),
            tokenize=False,
            add_generation_prompt=True,
        )
        return str(text)

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        """Generate for every request, ``max_batch`` at a time."""
        out: list[RawDecision] = []
        for start in range(0, len(requests), self.max_batch):
            out.extend(self._generate_batch(requests[start : start + self.max_batch]))
        return out

    def _generate_batch(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        torch = self._torch
        started = time.perf_counter()
        prompts = [self.render_prompt(r) for r in requests]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        first = requests[0].sampling
        sample = not first.greedy()
        if sample:
            torch.manual_seed(first.seed)
        with torch.no_grad():
            generated = self.model.generate(
                **enc,
                max_new_tokens=max(r.sampling.max_new_tokens for r in requests),
                do_sample=sample,
                temperature=first.temperature if sample else None,
                top_p=first.top_p if sample else None,
                top_k=first.top_k if sample else None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        elapsed = time.perf_counter() - started
        width = enc["input_ids"].shape[1]
        results = []
        for row, mask in zip(generated, enc["attention_mask"], strict=True):
            new = row[width:]
            ids = [int(t) for t in new if int(t) != self.tokenizer.pad_token_id]
            text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
            results.append(
                RawDecision(
                    text=text.strip(),
                    prompt_tokens=int(mask.sum()),
                    output_tokens=len(ids),
                    decode_s=elapsed,
                )
            )
        return results
