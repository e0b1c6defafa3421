"""The sampler's top-k: exact against a full sort, on vocabulary-sized and odd inputs."""

import numpy as np
import pytest

from engine.backends.llamacpp import LlamaCppBackend, top_k_indices
from engine.request import Sampling


def reference(logits: np.ndarray, k: int) -> list[int]:
    """The k largest finite logits by a full sort: value descending, then id ascending."""
    finite = [(-float(v), i) for i, v in enumerate(logits) if np.isfinite(v)]
    return [i for _, i in sorted(finite)[:k]]


def vocab_like(rng: np.random.Generator, n: int = 49152) -> np.ndarray:
    """A flat body with a few clear winners, as a small model's logits look."""
    x = rng.normal(0.0, 2.5, n).astype(np.float32)
    x[rng.integers(0, n, 6)] += rng.uniform(5.0, 15.0, 6).astype(np.float32)
    return x


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 5, 40])
def test_top_k_matches_a_full_sort_on_vocabulary_sized_logits(seed, k):
    logits = vocab_like(np.random.default_rng(seed))
    assert top_k_indices(logits, k).tolist() == reference(logits, k)


def test_ties_at_the_boundary_go_to_the_lower_id():
    rng = np.random.default_rng(7)
    logits = np.round(vocab_like(rng), 0)  # whole numbers: many ties, some across the k-th place
    got = top_k_indices(logits, 40).tolist()
    assert got == reference(logits, 40)
    assert len(set(logits[got[-5:]].tolist())) < 5  # the case really has ties in its tail


def test_masked_logits_keep_only_finite_ids():
    rng = np.random.default_rng(3)
    logits = np.full(49152, -np.inf, dtype=np.float32)
    allowed = rng.choice(49152, 7, replace=False)
    logits[allowed] = rng.normal(0.0, 1.0, 7)
    got = top_k_indices(logits, 40)
    assert sorted(got.tolist()) == sorted(allowed.tolist())
    assert got.tolist() == reference(logits, 40)
    assert top_k_indices(np.full(100, -np.inf, dtype=np.float32), 40).size == 0


def test_a_mask_that_leaves_more_than_k_but_spares_the_sample():
    # every 16th logit (the bound's sample) is masked: the bound is -inf, the answer still exact
    rng = np.random.default_rng(5)
    logits = vocab_like(rng)
    logits[::16] = -np.inf
    assert top_k_indices(logits, 40).tolist() == reference(logits, 40)


@pytest.mark.parametrize("n,k", [(10, 40), (10, 3), (1, 1), (200, 40), (49152, 0)])
def test_small_vocabularies_and_odd_k(n, k):
    logits = np.random.default_rng(n).normal(size=n).astype(np.float32)
    assert top_k_indices(logits, k).tolist() == reference(logits, max(k, 1))


def test_choose_samples_only_inside_top_k_and_top_p():
    rng = np.random.default_rng(11)
    logits = vocab_like(rng)
    sampling = Sampling(temperature=1.0, top_p=0.5, top_k=40)
    top = reference(logits, 40)
    probs = np.exp(logits[top].astype(np.float64) - logits[top[0]])
    probs /= probs.sum()
    nucleus = set(top[: int(np.searchsorted(np.cumsum(probs), 0.5) + 1)])
    draws = {LlamaCppBackend._choose(logits, sampling, np.random.default_rng(s)) for s in range(300)}
    assert draws <= nucleus
    assert len(draws) == len(nucleus) or len(draws) > 1


def test_nan_and_infinite_logits_are_never_chosen_and_never_hide_the_top():
    rng = np.random.default_rng(9)
    logits = vocab_like(rng)
    logits[::16][:30] = np.nan  # in the bound's sample: must not lift the bound past finite values
    logits[5] = np.inf
    logits[77] = -np.inf
    assert top_k_indices(logits, 40).tolist() == reference(logits, 40)
    assert top_k_indices(np.empty(0, dtype=np.float32), 40).size == 0
    pick = LlamaCppBackend._choose(logits, Sampling(temperature=1.0, top_k=40), np.random.default_rng(0))
    assert pick in reference(logits, 40)
