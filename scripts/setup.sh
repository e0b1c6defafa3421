#!/usr/bin/env bash
# Creates .venv and installs Daydream with the right build flags. Idempotent.
#   bash scripts/setup.sh runtime|demo|test
# The Makefile calls this; a stamp file per profile skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-runtime}
case "$profile" in
  runtime) extras="" ;;
  demo) extras="[demo,build]" ;;
  test) extras="[finetune,demo,serve,dev]" ;;
  *) echo "setup.sh: unknown profile '$profile' (runtime|demo|test)" >&2; exit 2 ;;
esac

py=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
if [ -z "$py" ] || ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: Daydream needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv with $("$py" --version)"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
# This machine's pip config lists local mirror folders that lack most projects; pip warns for each.
quiet_mirrors() { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; }

# The default llama.cpp build enables the host's AMX/AVX-512 kernels, which crash on VMs that
# advertise them without allowing them. These flags give a portable AVX2 build.
cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF"
llama_version=$(sed -n 's/^llama-cpp-python==//p' constraints.txt)
flags_id=$(printf '%s %s' "$llama_version" "$cmake_args" | sha256sum | cut -c1-12)
wheels=${DAYDREAM_WHEEL_CACHE:-$HOME/.cache/daydream/wheels}/$flags_id
mkdir -p "$wheels"
if ! ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
  echo "==> building llama-cpp-python $llama_version from source with portable CPU flags"
  echo "    (once per machine, about 5 minutes on 2 cores; cached in $wheels)"
  CMAKE_ARGS="$cmake_args" "${pip[@]}" wheel --no-deps --no-cache-dir -q -w "$wheels" \
    "llama-cpp-python==$llama_version"
fi

# Our wheel first, from the flag-keyed folder only, so pip can never pick a default build.
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)
marker="$venv/.llama-flags"
if [ "$installed" != "$llama_version" ] || [ "$(cat "$marker" 2>/dev/null)" != "$flags_id" ]; then
  echo "==> installing llama-cpp-python $llama_version (portable build)"
  "${pip[@]}" install -q --force-reinstall --no-deps --no-index --find-links "$wheels" \
    "llama-cpp-python==$llama_version"
  echo "$flags_id" >"$marker"
fi

echo "==> installing daydream$extras"
"${pip[@]}" install -q -c constraints.txt --find-links "$wheels" -e ".$extras" 2> >(quiet_mirrors)

echo "==> checking that a quantized model decodes"
set +e
"$venv/bin/python" -m engine.selfcheck
rc=$?
set -e
if [ $rc -ne 0 ]; then
  if [ $rc -ge 128 ]; then
    echo "setup.sh: llama.cpp crashed (signal $((rc - 128))) while decoding a quantized model." >&2
    echo "  The installed llama-cpp-python build uses CPU instructions this machine cannot run." >&2
    echo "  Remove $wheels and .venv, then adjust cmake_args in scripts/setup.sh." >&2
  else
    echo "setup.sh: the decode self-check failed (exit $rc); see the message above." >&2
  fi
  exit 1
fi
touch "$venv/.setup-$profile"
