"""Install-time check that llama.cpp can decode a quantized model on this CPU.

    python -m engine.selfcheck

A llama.cpp build that uses CPU instructions the machine cannot run dies with a signal here, at
setup, instead of later inside a game. scripts/setup.sh turns that into a clear message.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    """Decode a few grammar-constrained tokens with the quantized base model."""
    from characters import CharacterProfile, Situation
    from engine.backends.llamacpp import LlamaCppBackend
    from engine.request import DecisionRequest, Sampling
    from models.base import BaseModelError, ensure_base_gguf

    try:
        path = ensure_base_gguf(verbose=True)
    except BaseModelError as err:
        print(f"selfcheck: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    backend = LlamaCppBackend(path, max_batch=2, n_ctx_per_seq=512)
    request = DecisionRequest(
        CharacterProfile(name="Ada", description="A curious inventor."),
        Situation(context="Her workshop is on fire."),
        Sampling(temperature=0.0, max_new_tokens=12),
    )
    raw = backend.generate([request, request])
    backend.close()
    if raw[0].output_tokens == 0 or raw[0].text != raw[1].text:
        print(f"selfcheck: decode produced no usable tokens: {raw!r}", file=sys.stderr)
        return 3
    took = time.perf_counter() - start
    print(f"selfcheck: ok, {path.name} decoded {raw[0].output_tokens} tokens x2 in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
