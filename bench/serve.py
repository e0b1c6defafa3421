"""Load on ``daydream serve``: many game clients at once, every request with a deadline.

    python -m bench.serve [--models rules,default] [--requests 1000] [--clients 50] [--deadline-ms 2000]

For each model it starts ``daydream serve`` as its own process on a free port, then:
1. one client, one request at a time: the HTTP layer's own overhead with nothing queued;
2. ``--clients`` concurrent clients sending ``--requests`` POST /v1/decide in all (distinct seeds, so
   the cache never answers), checking that every request is answered exactly once.
Overhead = the client's round trip minus the decision's latency inside the server (``latency_ms``):
the time spent in HTTP, JSON and validation on both sides, and waiting for the event loop.
Prints tables and writes bench/results/serve-<model>-<deadline>ms-batch<N>.json. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.decisions import load_cases, table
from engine.atomic import write_text_atomic
from engine.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
CASES = ROOT / "finetune" / "data" / "public_cases.jsonl"


@contextmanager
def serve(model: str, max_queue: int, max_batch: int = 16) -> Iterator[tuple[str, int]]:
    """``daydream serve --model MODEL`` on a free port, as a separate process; yields its URL and pid."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daydream",
            "serve",
            "--model",
            model,
            "--port",
            "0",
            "--max-queue",
            str(max_queue),
            "--max-batch",
            str(max_batch),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    stderr = proc.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()
    try:
        deadline = time.monotonic() + 600  # a model that must be built first takes minutes
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            found = re.search(r"daydream serve: (http://\S+) ", line)
            if found:
                break
        url = found.group(1)
        while httpx.get(f"{url}/v1/health", timeout=5).status_code != 200:
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def build_bodies(n: int, deadline_ms: int, offset: int) -> list[dict[str, Any]]:
    """``n`` request bodies cycling through the public cases, each with its own id and seed."""
    cases = load_cases(CASES)
    bodies = []
    for i in range(n):
        case = cases[i % len(cases)]
        bodies.append(
            {
                "id": f"req-{offset + i}",
                "profile": case.profile.model_dump(mode="json"),
                "situation": case.situation.model_dump(mode="json"),
                "deadline_ms": deadline_ms,
                "seed": offset + i,
            }
        )
    return bodies


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx's AsyncClient spent 5.6 ms of CPU per request with 50 connections here, three times what
    the server spent, so with it this benchmark measured the client. A game engine's native HTTP
    client costs far less; this one is close to that.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST a JSON body; returns (status, parsed JSON)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        data = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        self._writer.write(head.encode() + data)
        status_line = await self._reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        payload = await self._reader.readexactly(length)
        return status, json.loads(payload)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()


async def run_clients(
    url: str, bodies: list[dict[str, Any]], clients: int
) -> tuple[list[dict[str, Any]], float]:
    """Send every body with ``clients`` concurrent clients, each on its own connection, one at a time."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    todo: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        todo.put_nowait(body)
    rows: list[dict[str, Any]] = []

    async def client() -> None:
        http = RawClient(host, int(port))
        try:
            while True:
                try:
                    body = todo.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                status, answer = await http.post_json("/v1/decide", body)
                rtt_ms = (time.perf_counter() - started) * 1000.0
                row: dict[str, Any] = {"sent_id": body["id"], "status": status, "rtt_ms": rtt_ms}
                if status == 200:
                    row.update(id=answer["id"], ticket=answer["ticket"], source=answer["source"],
                               latency_ms=answer["latency_ms"], reason=answer["reason"])  # fmt: skip
                rows.append(row)
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return rows, time.perf_counter() - started


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarize(rows: list[dict[str, Any]], bodies: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Counts (answered, exactly once, lost) and latency percentiles of one run."""
    ok = [r for r in rows if r["status"] == 200]
    answered_ids = Counter(r["id"] for r in ok)
    sent = {b["id"] for b in bodies}
    overhead = [r["rtt_ms"] - r["latency_ms"] for r in ok]
    server = [r["latency_ms"] for r in ok]
    rtt = [r["rtt_ms"] for r in ok]
    deadline_ms = {b["id"]: b["deadline_ms"] for b in bodies}
    late = [r for r in ok if r["latency_ms"] > deadline_ms[r["id"]] + 50]
    return {
        "requests": len(bodies),
        "answered": len(ok),
        "exactly_once": set(answered_ids) == sent
        and all(c == 1 for c in answered_ids.values())
        and all(r["id"] == r["sent_id"] for r in ok),
        "lost": len(sent - set(answered_ids)),
        "http_errors": dict(Counter(r["status"] for r in rows if r["status"] != 200)),
        "unique_tickets": len({r["ticket"] for r in ok}),
        "by_source": dict(Counter(r["source"] for r in ok)),
        "fallback_reasons": dict(
            Counter((r["reason"] or "").split(":", 1)[0] for r in ok if r["source"] == "fallback")
        ),
        "past_deadline_50ms": len(late),
        "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(ok) / wall_s, 1),
        "rtt_ms": {q: round(percentile(rtt, q), 2) for q in (50, 99)},
        "server_latency_ms": {q: round(percentile(server, q), 2) for q in (50, 99)},
        "overhead_ms": {
            "p50": round(percentile(overhead, 50), 2),
            "p99": round(percentile(overhead, 99), 2),
            "max": round(max(overhead, default=0.0), 2),
        },
    }


def bench_model(
    model: str, n: int, clients: int, deadline_ms: int, solo: int, max_batch: int
) -> dict[str, Any]:
    """Both runs against one model's server, plus the server's own statistics afterwards."""
    with serve(model, max_queue=max(1024, 2 * clients), max_batch=max_batch) as (url, pid):
        warm = build_bodies(4, deadline_ms, offset=10_000_000)
        asyncio.run(run_clients(url, warm, 1))
        solo_bodies = build_bodies(solo, deadline_ms, offset=20_000_000)
        solo_rows, solo_wall = asyncio.run(run_clients(url, solo_bodies, 1))
        bodies = build_bodies(n, deadline_ms, offset=0)
        cpu_before = process_cpu_s(pid)
        rows, wall = asyncio.run(run_clients(url, bodies, clients))
        cpu_after = process_cpu_s(pid)
        server_stats = httpx.get(f"{url}/v1/stats", timeout=10).json()
        model_id = httpx.get(f"{url}/v1/health", timeout=10).json()["model_id"]
    return {
        "model": model,
        "model_id": model_id,
        "clients": clients,
        "deadline_ms": deadline_ms,
        "max_batch": max_batch,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "one_client": summarize(solo_rows, solo_bodies, solo_wall),
        "concurrent": summarize(rows, bodies, wall),
        # the server process's CPU per request under load: HTTP, JSON, validation, and the model
        "server_cpu_ms_per_request": None
        if cpu_before is None or cpu_after is None
        else round((cpu_after - cpu_before) * 1000 / n, 2),
        "server_stats": server_stats["service"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the load benchmark for each model and print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="rules,default", help="comma-separated models to serve in turn")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--deadline-ms", type=int, default=2000)
    parser.add_argument("--solo", type=int, default=100, help="requests for the one-client overhead run")
    parser.add_argument("--max-batch", type=int, default=16, help="the server's --max-batch")
    args = parser.parse_args(argv)
    results = []
    for model in args.models.split(","):
        print(f"== {model}: {args.requests} requests from {args.clients} clients ==", file=sys.stderr)
        result = bench_model(model, args.requests, args.clients, args.deadline_ms, args.solo, args.max_batch)
        result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        results.append(result)
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"serve-{model}-{args.deadline_ms}ms-batch{args.max_batch}.json"
        write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    rows = []
    for r in results:
        for label, s in (("1 client", r["one_client"]), (f"{r['clients']} clients", r["concurrent"])):
            rows.append([
                r["model"], label, s["requests"], s["answered"], "yes" if s["exactly_once"] else "NO", s["lost"],
                " ".join(f"{k}={v}" for k, v in sorted(s["by_source"].items())), s["requests_per_s"],
                f"{s['server_latency_ms'][50]:.1f}/{s['server_latency_ms'][99]:.1f}",
                f"{s['overhead_ms']['p50']:.2f}/{s['overhead_ms']['p99']:.2f}", s["past_deadline_50ms"],
            ])  # fmt: skip
    headers = ["model", "load", "sent", "answered", "exactly once", "lost", "sources", "req/s",
               "decision p50/p99 ms", "HTTP overhead p50/p99 ms", "past deadline"]  # fmt: skip
    print(table(f"daydream serve, deadline {args.deadline_ms} ms per request", headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
