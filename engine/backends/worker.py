"""A llama.cpp backend that decodes in its own process, so sampling never holds the game's GIL.

    backend = load_backend("default", isolation="process")   # same contract as the in-thread one

In-thread, the decode loop's Python work (sampling, grammar checks, detokenizing) takes the GIL
between llama.cpp calls, and a game thread that wants it waits. Here a child process owns the
``LlamaCppBackend``; ``generate`` sends the pickled requests down its stdin and blocks reading its
stdout (a blocking read releases the GIL) until the answers come back. Outputs are the in-thread
backend's: same code, same seeds.

The child is ``python -m engine.backends.worker``, not a multiprocessing child: that would
re-import the game's main script in the child, which a game need not guard. It exits when its
stdin closes, so a game that exits without ``close()`` leaves nothing behind.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from engine.request import DecisionRequest, RawDecision

_HEADER = struct.Struct("<Q")


class WorkerError(RuntimeError):
    """The worker process failed to start, died, or answered with an error."""


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the pipe closed")
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-message")
    return pickle.loads(data)


def _serve(inbox: IO[bytes], outbox: IO[bytes]) -> int:
    """The child's loop: one backend, one request at a time, until told to stop or stdin closes."""
    try:
        path, model_id, options = _read(inbox)
        from engine.backends.llamacpp import LlamaCppBackend

        backend = LlamaCppBackend(path, model_id=model_id, **options)
    except Exception as err:  # the parent reports it as a load error
        _send(outbox, ("error", f"{type(err).__name__}: {err}"))
        return 1
    _send(outbox, ("ok", {"model_id": backend.model_id, "max_batch": backend.max_batch}))
    try:
        while True:
            try:
                op, args = _read(inbox)
            except EOFError:  # the parent went away
                return 0
            if op == "close":
                return 0
            try:
                if op == "generate":
                    result: Any = backend.generate(args)
                elif op == "call":  # a method of the backend, for benchmarks and tools
                    name, call_args = args
                    result = getattr(backend, name)(*call_args)
                elif op == "set":
                    name, value = args
                    setattr(backend, name, value)
                    result = None
                else:
                    raise WorkerError(f"unknown operation {op!r}")
            except Exception as err:
                _send(outbox, ("error", f"{type(err).__name__}: {err}"))
            else:
                _send(outbox, ("ok", result))
    finally:
        backend.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The finalizer: end the child without waiting for it (it may run on the game's thread).

    The child goes first: a thread still reading its answer then sees the pipe end instead of
    holding the reader's lock against ``close``.
    """
    if process.poll() is None:
        process.terminate()
    for stream in (process.stdin, process.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


class WorkerBackend:
    """``LlamaCppBackend`` in a child process, behind the same ``generate(requests)`` contract."""

    name = "llamacpp"

    def __init__(
        self, path: str | Path, *, model_id: str | None = None, start_timeout_s: float = 120.0, **options: Any
    ) -> None:
        self.path = Path(path)
        env = dict(os.environ)
        # the child imports what this process imports, wherever it was found
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "engine.backends.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop, self._process)
        try:
            info = self._start(str(self.path), model_id, options, start_timeout_s)
        except BaseException:
            self.close(timeout_s=1.0)
            raise
        self.model_id: str = info["model_id"]
        self.max_batch: int = info["max_batch"]

    def _start(self, path: str, model_id: str | None, options: dict[str, Any], timeout_s: float) -> Any:
        answer: list[Any] = []

        def wait() -> None:
            try:
                answer.append(self._exchange((path, model_id, options)))
            except BaseException as err:
                answer.append(err)

        waiter = threading.Thread(target=wait, name="daydream-decoder-start", daemon=True)
        waiter.start()
        waiter.join(timeout_s)
        if not answer:
            raise WorkerError(f"the decoder process was not ready after {timeout_s:.0f} s")
        if isinstance(answer[0], BaseException):
            raise answer[0]
        return answer[0]

    def _exchange(self, message: Any) -> Any:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            _send(stdin, message)
            status, payload = _read(stdout)
        except (EOFError, OSError, ValueError) as err:
            raise WorkerError(f"the decoder process died (exit code {self._process.poll()})") from err
        if status == "error":
            raise WorkerError(payload)
        return payload

    def _request(self, op: str, args: Any) -> Any:
        with self._lock:
            if not self._finalizer.alive:
                raise WorkerError("the backend is closed")
            return self._exchange((op, args))

    def generate(self, requests: Sequence[DecisionRequest]) -> list[RawDecision]:
        """Decode in the worker process; one RawDecision per request, in order."""
        result: list[RawDecision] = self._request("generate", list(requests))
        return result

    def call(self, method: str, *args: Any) -> Any:
        """Call a method of the backend in the child (``stats``, ``decode_floor``, ``set_threads``)."""
        return self._request("call", (method, args))

    def set(self, attribute: str, value: Any) -> None:
        """Set an attribute of the backend in the child (``use_grammar``, ``jump_forward``...)."""
        self._request("set", (attribute, value))

    def stats(self) -> dict[str, object]:
        """The child backend's ``stats()``."""
        result: dict[str, object] = self.call("stats")
        return result

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the child to free its model and exit; past ``timeout_s`` it is killed. Idempotent."""
        if not self._finalizer.alive:
            return
        if self._lock.acquire(timeout=timeout_s):  # a generate in flight: the child is ended below
            try:
                assert self._process.stdin is not None
                _send(self._process.stdin, ("close", None))
                self._process.wait(timeout_s)  # it frees its model and exits
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
            finally:
                self._lock.release()
        self._finalizer()
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout_s)


def main() -> int:
    """Entry point of the child: serve on the binary stdin/stdout."""
    inbox = sys.stdin.buffer
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the channel
    sys.stdout = sys.stderr
    return _serve(inbox, outbox)


if __name__ == "__main__":
    raise SystemExit(main())
