"""Thread governor: give llama.cpp as many threads as the machine has cores to spare.

llama.cpp's CPU threads meet at a barrier after every operation of a decode, so a team with more
threads than free cores waits at each barrier for a thread the OS has parked. A game is never
idle: its own loop, renderer or physics keeps a core busy, and then two llama.cpp threads on two
cores are slower than one. Measured on this project's 2-core machine, 4 decisions in one batch
with a process spinning on one core: 33.5 tokens/s on 2 threads, 67.2 on 1; on a quiet machine
116 on 2 against 76 on 1.

The governor reads, once a ``interval_s``, how much CPU the machine spent outside the backend's
own threads (``/proc/stat`` minus the threads named ``THREAD_NAME``, which the backend's decode
thread takes and llama.cpp's thread team inherits) and sets the thread count to the cores left,
with a margin either way so that it does not flap. Where ``/proc`` is missing (not Linux) it
never changes anything; the backend uses it only with an OpenMP build of llama.cpp, whose thread
team lives as long as the context (without OpenMP, threads that end take their CPU time with
them and would read as someone else's load).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THREAD_NAME = "daydream-llama"  # at most 15 bytes: the kernel's limit for a thread name
_DOWN_MARGIN = 0.5  # drop a thread once fewer than ``n - 0.5`` cores are free for ``n`` threads
_UP_MARGIN = 0.7  # take one more once ``n + 0.7`` are free (an idle game loop uses ~0.05)


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds spent by the whole machine and by the backend's threads, at a wall time."""

    wall_s: float
    machine_busy_s: float
    ours_s: float


def name_this_thread(name: str = THREAD_NAME) -> bool:
    """Name the calling OS thread (threads it creates later inherit the name); False if unsupported."""
    comm = Path(f"/proc/self/task/{threading.get_native_id()}/comm")
    try:
        comm.write_text(name[:15])
        return comm.read_text().strip() == name[:15]
    except OSError:
        return False


def _allowed_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def read_cpu_sample(name: str = THREAD_NAME, proc: Path = Path("/proc")) -> CpuSample | None:
    """Busy CPU seconds of the CPUs this process may run on, and of its threads called ``name``."""
    try:
        return _read_cpu_sample(name, proc)
    except (OSError, ValueError, IndexError):  # not Linux, or a /proc this code does not know
        return None


def _read_cpu_sample(name: str, proc: Path) -> CpuSample | None:
    lines = (proc / "stat").read_text().splitlines()
    allowed = {f"cpu{i}" for i in _allowed_cpus()}
    busy = 0
    seen = False
    for line in lines:
        fields = line.split()
        if not fields or fields[0] not in allowed:  # the machine's other CPUs are not ours to share
            continue
        # user nice system idle iowait irq softirq steal: busy is all but idle and iowait
        values = [int(v) for v in fields[1:9]]
        busy += sum(values) - values[3] - values[4]
        seen = True
    if not seen:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    ours = 0
    for task in list((proc / "self" / "task").iterdir()):
        try:
            if (task / "comm").read_text().strip() != name:
                continue
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between the listing and the read
            continue
        after = stat.rsplit(")", 1)[1].split()  # the name may hold spaces; fields after it are fixed
        ours += int(after[11]) + int(after[12])  # utime, stime
    return CpuSample(time.monotonic(), busy / tick, ours / tick)


class ThreadGovernor:
    """Decides llama.cpp's thread count from how busy the rest of the machine is."""

    def __init__(
        self,
        max_threads: int,
        *,
        cores: int | None = None,
        interval_s: float = 1.0,
        sample: Callable[[], CpuSample | None] = read_cpu_sample,
    ) -> None:
        self.max_threads = max(1, max_threads)
        self.cores = max(1, cores or len(_allowed_cpus()))
        self.interval_s = interval_s
        self.threads = self.max_threads
        self.others_cores = 0.0  # the last measure of the machine's load outside our threads
        self.changes = 0
        self._sample = sample
        self._last = sample()

    @property
    def enabled(self) -> bool:
        """Whether the machine can be measured at all."""
        return self._last is not None

    def set_max(self, max_threads: int) -> None:
        """A new ceiling (the caller's own thread count); the governor starts from it."""
        self.max_threads = self.threads = max(1, max_threads)

    def poll(self, now: float | None = None) -> int | None:
        """The thread count to switch to, or None to keep it (also while the interval runs)."""
        if self._last is None:
            return None
        now = time.monotonic() if now is None else now
        if now - self._last.wall_s < self.interval_s:
            return None
        current = self._sample()
        if current is None or current.wall_s <= self._last.wall_s:
            return None
        wall = current.wall_s - self._last.wall_s
        ours = current.ours_s - self._last.ours_s
        if self.interval_s > 0 and wall > 3 * self.interval_s and ours < 0.25 * wall:
            # an idle gap (no decode, or adaptive off): what ran then says little about now
            self._last = current
            return None
        others = (current.machine_busy_s - self._last.machine_busy_s) - ours
        self._last = current
        self.others_cores = max(0.0, others / wall)
        want = self.decide(self.others_cores)
        if want == self.threads:
            return None
        self.threads = want
        self.changes += 1
        return want

    def decide(self, others_cores: float) -> int:
        """The count for a machine whose other work keeps ``others_cores`` cores busy."""
        free = self.cores - others_cores
        n = self.threads
        while n > 1 and free < n - _DOWN_MARGIN:
            n -= 1
        while n < self.max_threads and free >= n + _UP_MARGIN:
            n += 1
        return n
