import subprocess
import sys


def test_import_engine_does_not_pull_training_stack():
    code = (
        "import sys, engine, engine.sim.simulation, engine.service, characters, models.registry;"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import engine pulled in: {out.stdout.strip()}"


def test_only_the_llamacpp_backend_imports_llama_cpp():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for folder in ("engine", "characters", "models", "finetune", "demo", "daydream")
        for p in (root / folder).rglob("*.py")
        if ("import llama_cpp" in p.read_text() or "from llama_cpp" in p.read_text())
        and p.name != "llamacpp.py"
    ]
    assert offenders == []


def test_import_engine_and_engine_serve_do_not_need_the_serve_extra():
    code = (
        "import sys, engine, engine.serve, engine.models;"
        "heavy = [m for m in ('fastapi', 'starlette', 'uvicorn', 'httpx', 'websockets') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import engine pulled in: {out.stdout.strip()}"
