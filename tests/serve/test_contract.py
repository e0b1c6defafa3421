"""The OpenAPI contract holds: Schemathesis, every check and every phase, against `daydream serve`.

Each mode runs ``st run URL/openapi.json --checks all`` against a real server process on the rules
backend (examples, coverage, fuzzing, and the stateful phase following the documented links),
with a fixed seed and bounded examples so that it stays under half a minute on 2 cores.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra (pip install -e '.[dev]')")

from tests.serve.conftest import serve_process

pytestmark = pytest.mark.timeout(120)

TOKEN = "contract-token"
SCHEMATHESIS = [
    "--checks", "all",
    "--phases", "examples,coverage,fuzzing,stateful",
    "--max-examples", "12",
    "--seed", "20260601",
    "--workers", "1",
    "--request-timeout", "10",
    "--generation-database", "none",
    "--no-color",
]  # fmt: skip
MODES = {
    "no-token": ((), {}, ()),
    "token": (("--token-env", "DD_CONTRACT_TOKEN"), {"DD_CONTRACT_TOKEN": TOKEN}, ("-H", f"Authorization: Bearer {TOKEN}")),
}  # fmt: skip


@pytest.mark.parametrize("mode", list(MODES))
def test_schemathesis_finds_no_failure(mode, tmp_path):
    serve_args, env, headers = MODES[mode]
    with serve_process("--model", "rules", *serve_args, env=env) as url:
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{url}/openapi.json",
            *SCHEMATHESIS,
            *headers,
        ]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=100)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-12_000:]
    summary = out[out.index("SUMMARY") :]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary  # ran, and passed
    assert "Failures:" not in summary
    # The stateful phase follows the six documented links, and Schemathesis had to infer none.
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total", out)
    assert links is not None and links.group(3) == "6" and int(links.group(1)) >= 4, out[-4000:]
