"""PrefixCache: per-character prompt states, LRU within a byte bound, reuse by shared tokens."""

from engine.backends.prefix_cache import PrefixCache, common_prefix_len


def test_common_prefix_len():
    assert common_prefix_len([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_len([], [1]) == 0
    assert common_prefix_len([7, 8], [7, 8]) == 2


def test_lookup_returns_the_entry_and_the_shared_length():
    cache = PrefixCache(max_bytes=100)
    cache.store("Ada", [1, 2, 3, 4], blob="state-a", nbytes=10)
    entry, shared = cache.lookup("Ada", [1, 2, 3, 9, 9])
    assert entry is not None and entry.blob == "state-a" and shared == 3
    assert cache.lookup("Zed", [1, 2]) == (None, 0)


def test_a_new_prompt_for_the_same_character_replaces_its_entry():
    cache = PrefixCache(max_bytes=100)
    cache.store("Ada", [1, 2, 3], blob="old", nbytes=10)
    cache.store("Ada", [1, 2, 5, 6], blob="new", nbytes=12)  # the profile changed
    entry, shared = cache.lookup("Ada", [1, 2, 5, 7])
    assert entry is not None and entry.blob == "new" and shared == 3
    assert cache.stats()["bytes"] == 12 and len(cache) == 1


def test_least_recently_used_entries_go_first_past_the_byte_bound():
    cache = PrefixCache(max_bytes=30)
    for name in ("a", "b", "c"):
        cache.store(name, [1], blob=name, nbytes=10)
    cache.lookup("a", [1])  # a is now the most recent
    cache.store("d", [1], blob="d", nbytes=10)
    assert cache.lookup("b", [1])[0] is None
    assert all(cache.lookup(name, [1])[0] is not None for name in ("a", "c", "d"))
    assert cache.stats()["evictions"] == 1 and cache.stats()["bytes"] <= 30
    cache.store("huge", [1], blob="x", nbytes=31)  # larger than the bound: not kept
    assert cache.lookup("huge", [1])[0] is None


def test_counters_and_a_disabled_cache():
    cache = PrefixCache(max_bytes=100)
    cache.count(0, None)
    cache.count(50, 60)  # shared less than the entry: partial
    cache.count(59, 60)  # the same prompt again: its last token is re-fed, not a partial hit
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["partial_hits"]) == (2, 1, 1)
    assert stats["reused_tokens"] == 109 and stats["hit_rate"] == 2 / 3
    off = PrefixCache(max_bytes=0)
    off.store("a", [1], blob="a", nbytes=1)
    assert not off.enabled and len(off) == 0
