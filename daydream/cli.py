"""The ``daydream`` command line. Each subcommand imports what it needs when it runs.

daydream --help
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_schema(args: argparse.Namespace) -> int:
    from characters.schema import SCHEMA_DIR, build_json_schemas, render_schema, save_json_schemas

    if args.action == "check":
        drifted = [
            name
            for name, schema in build_json_schemas().items()
            if not (SCHEMA_DIR / f"{name}.schema.json").exists()
            or (SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8") != render_schema(schema)
        ]
        if drifted:
            print(f"schema drift: {', '.join(drifted)} (run `daydream schema export`)", file=sys.stderr)
            return 1
        print("schemas match the models")
        return 0
    for path in save_json_schemas():
        print(f"wrote {path}")
    return 0


def _cmd_casts(args: argparse.Namespace) -> int:
    from characters import CastError, list_casts, load_cast

    if not args.files:
        for name in list_casts():
            cast = load_cast(name)
            print(f"{name:10} {cast.name:14} {len(cast.characters):3} characters")
        return 0
    failed = 0
    for file in args.files:
        try:
            cast = load_cast(file)
        except CastError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
        else:
            print(f"ok: {file}: {cast.name}, {len(cast.characters)} characters")
    return 1 if failed else 0


def _cmd_decide(args: argparse.Namespace) -> int:
    from engine.batch_cli import run_decide

    return run_decide(args.input, args.out, model=args.model, seed=args.seed, deadline_s=args.deadline_s)


def _cmd_models(args: argparse.Namespace) -> int:
    from models.cli import run_models

    return run_models(args)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from finetune.config import ConfigError

    try:
        if args.finetune_command == "run":
            from finetune.run import main as run_main

            return run_main([args.config, *args.overrides, *(["--skip-train"] if args.skip_train else [])])
        if args.finetune_command == "data":
            from finetune.data.dataset import main as data_main

            return data_main(args.data_args)
        if args.finetune_command == "judge":
            from finetune.judge import main as judge_main

            return judge_main(args.judge_args)
        from finetune.evaluate import main as eval_main

        return eval_main(args.eval_args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _cmd_simulate(args: argparse.Namespace) -> int:
    from engine.sim.cli import run_simulate

    model = "rules" if args.backend == "rules" else args.model
    return run_simulate(args.world, hours=args.hours, speed=args.speed, model=model, seed=args.seed,
                        log=args.log, save=args.save, quiet=args.quiet, deadline_s=args.deadline_s)  # fmt: skip


def _build_if_missing(model: str) -> bool:
    """Build a registry model whose GGUF is missing; False only when a build was needed and failed."""
    if model in ("rules", "base") or model.endswith(".gguf") or ":" in model:
        return True
    from models.registry import ModelNotFound, built_gguf_path, load_manifest

    try:
        missing = not built_gguf_path(load_manifest(model)).exists()
    except ModelNotFound:
        return True  # loading it reports the unknown name
    if not missing:
        return True
    print(f"model {model!r} is not built yet; building it first (a few minutes, once)", file=sys.stderr)
    from models.cli import run_models

    build_args = argparse.Namespace(models_command="build", name=model, if_missing=True, ollama=False)
    return run_models(build_args) == 0


def _cmd_demo(args: argparse.Namespace) -> int:
    model = "rules" if args.backend == "rules" else args.model
    if not _build_if_missing(model):
        print("build failed; the demo will start on the rules backend", file=sys.stderr)
    from demo.app import build_app

    build_app(args.world, model, seed=args.seed, speed=args.speed).run()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    if not _build_if_missing(args.model):
        print(f"error: building model {args.model!r} failed", file=sys.stderr)
        return 2
    from engine.serve.cli import run_serve

    return run_serve(
        model=args.model, host=args.host, port=args.port, token_env=args.token_env,
        max_batch=args.max_batch, max_queue=args.max_queue, workers=args.workers,
        deadline_ms=args.deadline_ms, max_body_bytes=args.max_body_kb * 1024,
        remote_model=args.remote_model, threads=args.threads, access_log=args.access_log,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="daydream", description="Character-AI runtime for games: decide what characters do next."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("decide", help="answer a JSONL file of characters and situations")
    p.add_argument("input", help="input JSONL: one profile + situation per line")
    p.add_argument("--out", required=True, help="output JSONL, one answer per input line")
    p.add_argument("--model", default="default", help="registry name, GGUF path, 'base' or 'rules'")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same output)")
    p.add_argument("--deadline-s", type=float, default=None, help="per-decision deadline in seconds")
    p.set_defaults(func=_cmd_decide)

    p = sub.add_parser("schema", help="export the JSON Schemas, or check them for drift")
    p.add_argument(
        "action", choices=["export", "check"], help="export: write the files; check: fail on drift"
    )
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser("casts", help="list the shipped casts, or check cast files")
    p.add_argument("files", nargs="*", help="cast YAML/JSON files to check")
    p.set_defaults(func=_cmd_casts)

    p = sub.add_parser("models", help="list, verify or build models in the registry")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    msub.add_parser("list", help="models in the registry and whether they are built")
    pv = msub.add_parser("verify", help="re-hash a model's files against its manifest")
    pv.add_argument("name", nargs="?", default="default")
    pb = msub.add_parser("build", help="build a model's GGUF from the base and its adapter")
    pb.add_argument("name", nargs="?", default="default")
    pb.add_argument("--if-missing", action="store_true", help="do nothing if already built")
    pb.add_argument("--ollama", action="store_true", help="also write an Ollama Modelfile")
    pb.add_argument("--merged", metavar="DIR", help="also write merged HF weights to DIR (for vLLM)")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("simulate", help="run a simulated world and print its event log")
    p.add_argument("world", help="world YAML, or a shipped world: town, village")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours to run")
    p.add_argument("--speed", default="max", help="sim-minutes per real second, or 'max'")
    p.add_argument("--model", default="default", help="registry name, GGUF path or 'base'")
    p.add_argument(
        "--backend", choices=["model", "rules"], default="model", help="'rules' runs with no model"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deadline-s", type=float, default=None, help="real-time deadline per decision")
    p.add_argument("--log", help="write every event as JSONL here")
    p.add_argument("--save", help="save the final world state here (JSON)")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("demo", help="open the Textual demo of a simulated world")
    p.add_argument("world", nargs="?", default="town", help="world YAML, or a shipped world: town, village")
    p.add_argument("--model", default="default", help="registry name, GGUF path or 'base'")
    p.add_argument("--backend", choices=["model", "rules"], default="model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speed", type=int, default=10, help="sim-minutes per real second")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("serve", help="serve decisions over HTTP and WebSocket to any game engine")
    p.add_argument(
        "--model", default="default", help="registry name, GGUF path, 'base', 'rules' or openai:URL[,URL...]"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind; not loopback needs --token-env")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (0 picks a free one)")
    p.add_argument("--token-env", default=None, metavar="VAR", help="require the bearer token held in $VAR")
    p.add_argument("--max-batch", type=int, default=16, help="decisions decoded together")
    p.add_argument("--max-queue", type=int, default=256, help="waiting decisions before 429")
    p.add_argument("--workers", type=int, default=1, help="batches in flight (more for remote backends)")
    p.add_argument("--deadline-ms", type=int, default=30_000, help="deadline for requests that give none")
    p.add_argument("--max-body-kb", type=int, default=1024, help="larger request bodies get 413")
    p.add_argument("--remote-model", default="default", help="model name to ask openai: servers for")
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    p.add_argument("--access-log", action="store_true", help="log every request (slower)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("finetune", help="regenerate a character model (needs the finetune extra)")
    fsub = p.add_subparsers(dest="finetune_command", required=True, metavar="ACTION")
    pr = fsub.add_parser("run", help="data -> SFT -> (DPO) -> export -> evaluate from one YAML config")
    pr.add_argument("config", help="run config YAML, e.g. finetune/configs/default.yaml")
    pr.add_argument("overrides", nargs="*", help="section.key=value overrides")
    pr.add_argument("--skip-train", action="store_true", help="reuse the adapter already in output_dir")
    pd = fsub.add_parser("data", help="generate a dataset; --teacher URL distills from a chat endpoint")
    pd.add_argument("data_args", nargs=argparse.REMAINDER)
    pe = fsub.add_parser("eval", help="evaluate models side by side (see --help of finetune.evaluate)")
    pe.add_argument("eval_args", nargs=argparse.REMAINDER)
    pj = fsub.add_parser("judge", help="blind sense judging: packets for two judges each, then a tally")
    pj.add_argument("judge_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_finetune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] in (["finetune", "data"], ["finetune", "eval"], ["finetune", "judge"]):  # own parsers
        key = f"{argv[1]}_args"
        return _cmd_finetune(argparse.Namespace(finetune_command=argv[1], **{key: argv[2:]}))
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) == "finetune" and args.finetune_command == "run":
        args.overrides = [*args.overrides, *extra]  # key=value overrides may follow --flags
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
