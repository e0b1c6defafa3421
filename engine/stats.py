"""Running statistics of a DecisionService: latency percentiles, throughput, sources."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class ServiceStats:
    """A snapshot of a service's counters."""

    decisions: int
    by_source: dict[str, int]
    p50_latency_ms: float
    p95_latency_ms: float
    tokens_per_s: float
    decisions_per_s: float
    mean_batch_size: float
    max_batch_size: int
    cache_hits: int
    retries: int
    fallbacks: int
    queued: int
    fallback_reasons: dict[str, int] = field(default_factory=dict)


class StatsRecorder:
    """Thread-safe accumulator behind ``DecisionService.stats()``."""

    def __init__(self, window: int = 2000) -> None:
        self._lock = threading.Lock()
        self._latencies_ms: deque[float] = deque(maxlen=window)
        self._sources: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._batch_sizes: deque[float] = deque(maxlen=window)  # continuous batching: mean live
        self._output_tokens = 0
        self._decode_s = 0.0
        self._retries = 0
        self._started = time.perf_counter()

    def record_result(self, source: str, latency_ms: float, reason: str | None = None) -> None:
        """Count one delivered result."""
        with self._lock:
            self._sources[source] += 1
            self._latencies_ms.append(latency_ms)
            if reason:
                self._reasons[reason.split(":", 1)[0]] += 1

    def record_batch(self, size: float, output_tokens: int, decode_s: float) -> None:
        """Count one backend call."""
        with self._lock:
            self._batch_sizes.append(size)
            self._output_tokens += output_tokens
            self._decode_s += decode_s

    def record_retry(self) -> None:
        """Count one retry."""
        with self._lock:
            self._retries += 1

    def snapshot(self, queued: int) -> ServiceStats:
        """The current statistics."""
        with self._lock:
            latencies = list(self._latencies_ms)
            total = sum(self._sources.values())
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            batches = list(self._batch_sizes)
            return ServiceStats(
                decisions=total,
                by_source=dict(self._sources),
                p50_latency_ms=percentile(latencies, 50),
                p95_latency_ms=percentile(latencies, 95),
                tokens_per_s=self._output_tokens / self._decode_s if self._decode_s else 0.0,
                decisions_per_s=total / elapsed,
                mean_batch_size=sum(batches) / len(batches) if batches else 0.0,
                max_batch_size=round(max(batches, default=0)),
                cache_hits=self._sources.get("cache", 0),
                retries=self._retries,
                fallbacks=self._sources.get("fallback", 0),
                queued=queued,
                fallback_reasons=dict(self._reasons),
            )
