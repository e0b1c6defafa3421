"""``daydream serve``: the HTTP API on uvicorn, over one DecisionService.

daydream serve --model default --host 127.0.0.1 --port 8765
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

from engine.models import ModelSpecError, load_backend


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name that resolves elsewhere
        return False


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    return sock


def run_serve(
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    token_env: str | None = None,
    max_batch: int = 16,
    max_queue: int = 256,
    workers: int = 1,
    deadline_ms: int = 30_000,
    max_body_bytes: int = 1 << 20,
    remote_model: str = "default",
    threads: int | None = None,
    access_log: bool = False,
) -> int:
    """Serve until interrupted; returns the exit status (2 for a refused setup)."""
    token = None
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            print(f"error: --token-env {token_env}: ${token_env} is not set or empty", file=sys.stderr)
            return 2
    if token is None and not is_loopback(host):
        print(
            f"error: binding {host} lets other machines call this server; give it a bearer token "
            "with --token-env VAR (the token in $VAR), or bind 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    try:
        import uvicorn

        from engine.serve.app import build_app
    except ImportError as err:
        print(
            f"error: daydream serve needs the serve extra ({err}): pip install 'daydream[serve]'",
            file=sys.stderr,
        )
        return 2
    from engine.service import DecisionService

    options: dict[str, object] = {}
    if model.startswith("openai:"):
        options["remote_model"] = remote_model
    elif threads and model != "rules" and not model.startswith("hf:"):
        options["n_threads"] = threads  # llama.cpp's threads
    try:
        backend = load_backend(model, **options)
    except (ModelSpecError, FileNotFoundError, RuntimeError) as err:
        print(f"error: cannot load model {model!r}: {err}", file=sys.stderr)
        return 2
    try:
        sock = _bind(host, port)
    except OSError as err:
        print(f"error: cannot listen on {host}:{port}: {err}", file=sys.stderr)
        return 2
    service = DecisionService(
        backend, max_batch=max_batch, max_queue=max_queue, workers=workers, keep_finished=False
    )
    app = build_app(service, token=token, max_body_bytes=max_body_bytes, default_deadline_ms=deadline_ms)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        ws_max_size=max_body_bytes,
        timeout_graceful_shutdown=5,
    )
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"daydream serve: http://{shown}:{bound_port} (model {service.model_id}, "
        f"{'bearer token required' if token else 'no token'}); API docs at /docs",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        service.close()
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    return 0
