"""The thread governor: measures the machine's other work and gives llama.cpp the cores left."""

import os
import threading
from pathlib import Path

import pytest

from engine.backends.thread_governor import CpuSample, ThreadGovernor, name_this_thread, read_cpu_sample


class FakeMachine:
    """CPU samples where the machine's other work keeps ``others`` cores busy, 1 s per sample."""

    def __init__(self) -> None:
        self.others = 0.0
        self.ours = 1.0
        self.t = 0.0
        self.busy = 0.0
        self.ours_s = 0.0

    def sample(self) -> CpuSample:
        sample = CpuSample(self.t, self.busy, self.ours_s)
        self.t += 1.0
        self.busy += self.others + self.ours
        self.ours_s += self.ours
        return sample


def _governor(machine: FakeMachine, max_threads: int = 2, cores: int = 2) -> ThreadGovernor:
    return ThreadGovernor(max_threads, cores=cores, interval_s=1.0, sample=machine.sample)


def test_a_busy_neighbour_takes_a_thread_and_gives_it_back_when_it_stops():
    machine = FakeMachine()
    governor = _governor(machine)
    assert governor.poll(now=1.0) is None and governor.threads == 2  # quiet: keep both
    machine.others = 1.0  # the game's loop spins on one core
    assert governor.poll(now=2.0) is None  # this sample still covers the quiet second
    assert governor.poll(now=3.0) == 1 and governor.others_cores == pytest.approx(1.0)
    assert governor.poll(now=4.0) is None  # still busy: stays at one
    machine.others = 0.05  # an idle game loop
    assert governor.poll(now=5.0) is None
    assert governor.poll(now=6.0) == 2 and governor.changes == 2


def test_a_load_between_the_margins_does_not_flap():
    machine = FakeMachine()
    machine.others = 0.4  # neither clearly busy nor clearly free: whatever it has, it keeps
    governor = _governor(machine)
    assert [governor.poll(now=float(t)) for t in range(1, 6)] == [None] * 5 and governor.threads == 2
    governor.threads = 1
    assert [governor.poll(now=float(t)) for t in range(6, 11)] == [None] * 5 and governor.threads == 1


def test_it_measures_once_an_interval_and_never_goes_below_one_or_above_its_ceiling():
    machine = FakeMachine()
    machine.others = 7.5
    governor = _governor(machine, max_threads=4, cores=8)
    assert governor.poll(now=0.5) is None  # the interval has not run yet: no sample taken
    assert machine.t == 1.0
    assert governor.poll(now=1.0) == 1  # 0.5 cores free: one thread, not zero
    assert governor.poll(now=2.0) is None
    machine.others = 0.0
    assert governor.poll(now=3.0) is None  # the sample still covers the busy second
    assert governor.poll(now=4.0) == 4  # 8 free, but the ceiling is the caller's 4
    governor.set_max(2)
    assert governor.threads == 2 and governor.poll(now=5.0) is None


def test_without_measures_it_changes_nothing():
    governor = ThreadGovernor(2, cores=2, sample=lambda: None)
    assert not governor.enabled and governor.poll(now=100.0) is None and governor.threads == 2


def _fake_proc(root: Path, cpus: dict[int, list[int]], tasks: dict[int, tuple[str, int, int]]) -> Path:
    total = [sum(col) for col in zip(*cpus.values(), strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines += [f"cpu{i} " + " ".join(map(str, v)) for i, v in cpus.items()]
    (root / "stat").write_text("\n".join([*lines, "intr 1 2 3", ""]))
    for tid, (name, utime, stime) in tasks.items():
        task = root / "self" / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "comm").write_text(name + "\n")
        # the name in parentheses may hold spaces and parentheses itself
        fields = ["S", *["0"] * 10, str(utime), str(stime), *["0"] * 20]
        (task / "stat").write_text(f"{tid} ({name} (x) y) " + " ".join(fields) + "\n")
    return root


def test_a_cpu_sample_reads_the_allowed_cpus_and_the_named_threads(tmp_path, monkeypatch):
    tick = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    cpus = {
        0: [100, 0, 50, 900, 20, 5, 5, 10],
        1: [200, 0, 0, 800, 0, 0, 0, 0],
        7: [999, 0, 0, 0, 0, 0, 0, 0],
    }
    proc = _fake_proc(
        tmp_path, cpus, {11: ("daydream-llama", 30, 10), 12: ("daydream-llama", 5, 5), 13: ("main", 70, 0)}
    )
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    sample = read_cpu_sample("daydream-llama", proc=proc)
    assert sample is not None
    assert sample.machine_busy_s == pytest.approx((170 + 200) / tick)  # cpu7 is not ours to share
    assert sample.ours_s == pytest.approx(50 / tick)
    assert read_cpu_sample("daydream-llama", proc=tmp_path / "missing") is None


def test_a_named_thread_passes_its_name_to_the_threads_it_starts():
    if not Path("/proc/self/task").is_dir():
        pytest.skip("thread names are read from /proc (Linux)")
    names: dict[str, str] = {}

    def comm() -> str:
        return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()

    def child() -> None:
        names["child"] = comm()

    def parent() -> None:
        names["named"] = str(name_this_thread("dd-test-name"))
        names["parent"] = comm()
        thread = threading.Thread(target=child)  # as llama.cpp's thread team is started
        thread.start()
        thread.join()

    thread = threading.Thread(target=parent)
    thread.start()
    thread.join(timeout=10)
    assert names == {"named": "True", "parent": "dd-test-name", "child": "dd-test-name"}
    assert Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip() != "dd-test-name"


def test_after_an_idle_gap_it_measures_afresh_instead_of_averaging_the_gap():
    machine = FakeMachine()
    machine.others = 1.0
    governor = _governor(machine)
    machine.t = 30.0  # no decode for half a minute: the busy neighbour may have gone
    machine.others = 0.0
    assert governor.poll(now=30.0) is None and governor.threads == 2  # a new baseline, no verdict
    assert governor.poll(now=31.0) is None and governor.others_cores == pytest.approx(0.0)


def test_a_long_window_in_which_the_backend_kept_decoding_is_measured():
    # one slow step (a big batch on a busy machine) is no idle gap: its window says who was busy
    machine = FakeMachine()
    governor = _governor(machine)
    machine.t = 30.0
    machine.busy += 29.0 + 30.0  # our threads ran 29 s of the 30, something else a whole core
    machine.ours_s += 29.0
    assert governor.poll(now=30.0) == 1 and governor.others_cores == pytest.approx(1.0)
