"""What goes into a backend and what comes out: the one contract every backend honours."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from characters import CharacterProfile, Situation


@dataclass(frozen=True)
class Sampling:
    """Decoding settings; ``seed`` makes sampled output repeatable."""

    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    max_new_tokens: int = 200
    seed: int = 0

    def greedy(self) -> bool:
        """Whether this samples deterministically without randomness."""
        return self.temperature <= 0.0

    def with_seed(self, seed: int) -> Sampling:
        """A copy with another seed (used for the retry)."""
        return Sampling(self.temperature, self.top_p, self.top_k, self.max_new_tokens, seed)


# A RawDecision error starting with this means the backend stopped because nobody wanted the answer.
ABANDONED = "abandoned"


@dataclass(frozen=True)
class DecisionRequest:
    """One character's decision to make."""

    profile: CharacterProfile
    situation: Situation
    sampling: Sampling = field(default_factory=Sampling)
    # True once nobody wants the answer (its ticket got the deadline fallback, or was cancelled):
    # a backend may stop decoding it, freeing its batch slot for requests that can still be answered
    abandoned: Callable[[], bool] | None = field(default=None, compare=False, repr=False)

    def is_abandoned(self) -> bool:
        """Whether the caller no longer wants this answer."""
        return self.abandoned is not None and self.abandoned()

    def cache_key(self, model_id: str, prompt_version: str) -> str:
        """Stable key over model, prompt version, inputs and sampling (see ``cache_key``)."""
        return cache_key(model_id, prompt_version, self.profile, self.situation, self.sampling)


def cache_key(
    model_id: str,
    prompt_version: str,
    profile: CharacterProfile,
    situation: Situation,
    sampling: Sampling,
    seed: int | None = None,
) -> str:
    """Stable key over model, prompt version, inputs and sampling (``seed`` overrides its seed).

    Built from pydantic's own JSON (field order is the models' own, so stable) rather than
    ``model_dump`` + ``json.dumps``: a game may submit 50 decisions in one frame, and this was
    two thirds of ``submit``. The service calls it without building a request first.
    """
    s = sampling
    blob = b"\x1e".join(
        [
            model_id.encode(),
            prompt_version.encode(),
            profile.model_dump_json().encode(),
            situation.model_dump_json().encode(),
            repr(
                (s.temperature, s.top_p, s.top_k, s.max_new_tokens, s.seed if seed is None else seed)
            ).encode(),
        ]
    )
    return hashlib.sha256(blob).hexdigest()


@dataclass
class RawDecision:
    """A backend's raw answer for one request: text, token counts, or the error it hit."""

    text: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    decode_s: float = 0.0
