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

# llama.cpp's default (native) build turns on every instruction set the CPU advertises, AMX
# included, and AMX crashes on VMs that advertise it without allowing it. So the build names its
# instruction sets: AVX-512 with VNNI where /proc/cpuinfo lists them (on the 2-core test machine
# 1.5x faster prompts and 1.3x faster batches than AVX2), the portable AVX2 build otherwise, and
# the AVX2 build again if the AVX-512 one crashes the decode self-check below.
# DAYDREAM_LLAMA_CPU=avx2|avx512 picks one by hand.
avx2_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF"
cpu_flags=" $( { grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true; } | cut -d: -f2) "
has() { for f in "$@"; do [[ "$cpu_flags" == *" $f "* ]] || return 1; done; }
avx512_args=""
if has avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512_vnni; then
  avx512_args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON"
  if has avx512vbmi; then avx512_args+=" -DGGML_AVX512_VBMI=ON"; fi
  if has avx512_bf16; then avx512_args+=" -DGGML_AVX512_BF16=ON"; fi
  avx512_args+=" -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF"
fi
llama_version=$(sed -n 's/^llama-cpp-python==//p' constraints.txt)
wheel_root=${DAYDREAM_WHEEL_CACHE:-$HOME/.cache/daydream/wheels}
flags_id() { printf '%s %s' "$llama_version" "$1" | sha256sum | cut -c1-12; }
crashed=""  # where this machine remembers that the AVX-512 build crashed
if [ -n "$avx512_args" ]; then crashed="$wheel_root/$(flags_id "$avx512_args").crashed"; fi

case "${DAYDREAM_LLAMA_CPU:-auto}" in
  avx2) avx512_args="" ;;
  avx512)
    if [ -z "$avx512_args" ]; then
      echo "setup.sh: DAYDREAM_LLAMA_CPU=avx512, but this CPU lacks AVX-512 with VNNI" >&2
      exit 1
    fi
    ;;
  auto)
    if [ -n "$avx512_args" ] && [ -e "$crashed" ]; then
      avx512_args=""  # this machine crashed on the AVX-512 build before
    fi
    ;;
  *) echo "setup.sh: DAYDREAM_LLAMA_CPU must be auto, avx2 or avx512 (got '$DAYDREAM_LLAMA_CPU')" >&2; exit 2 ;;
esac

# Builds (once per machine and flag set, cached by a hash of both) and installs one build.
# Returns non-zero where the build or the install fails (errexit is off inside an `if`).
install_llama() {
  local label=$1 args=$2 id wheels installed marker
  id=$(flags_id "$args")
  wheels=$wheel_root/$id
  mkdir -p "$wheels"
  if ! ls "$wheels"/llama_cpp_python-"$llama_version"-*.whl >/dev/null 2>&1; then
    echo "==> building llama-cpp-python $llama_version from source for $label"
    echo "    (once per machine, about 5 minutes on 2 cores; cached in $wheels)"
    CMAKE_ARGS="$args" "${pip[@]}" wheel --no-deps --no-cache-dir -q -w "$wheels" \
      "llama-cpp-python==$llama_version" 2> >(quiet_mirrors) || return 1
  fi
  # Our wheel, from the flag-keyed folder only, so pip can never pick a default build.
  installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null || true)
  marker="$venv/.llama-flags"
  if [ "$installed" != "$llama_version" ] || [ "$(cat "$marker" 2>/dev/null)" != "$id" ]; then
    echo "==> installing llama-cpp-python $llama_version ($label)"
    "${pip[@]}" install -q --force-reinstall --no-deps --no-index --find-links "$wheels" \
      "llama-cpp-python==$llama_version" || return 1
    echo "$id" >"$marker"
  fi
  llama_wheels=$wheels
}

install_avx2() {
  if ! install_llama "AVX2, portable" "$avx2_args"; then
    echo "setup.sh: building or installing llama-cpp-python failed (see above)" >&2
    exit 1
  fi
}

# An instruction-set fault: illegal instruction, bus error, or the general-protection fault seen
# where a VM advertises what it does not allow. Other deaths (OOM kill, abort) are not the build's.
instruction_fault() { [ "$rc" -eq 132 ] || [ "$rc" -eq 135 ] || [ "$rc" -eq 139 ]; }

selfcheck() {
  echo "==> checking that a quantized model decodes"
  set +e
  "$venv/bin/python" -m engine.selfcheck
  rc=$?
  set -e
}

if [ -n "$avx512_args" ] && ! install_llama "AVX-512 (VNNI)" "$avx512_args"; then
  echo "setup.sh: the AVX-512 build of llama-cpp-python failed (see above); using the portable AVX2 build" >&2
  avx512_args=""
fi
if [ -z "$avx512_args" ]; then install_avx2; fi

echo "==> installing daydream$extras"
"${pip[@]}" install -q -c constraints.txt --find-links "$llama_wheels" -e ".$extras" 2> >(quiet_mirrors)

selfcheck
# An instruction fault on the AVX-512 build: try the AVX2 build, and remember it for this machine
# only once the AVX2 build is known to work.
if [ -n "$avx512_args" ] && instruction_fault; then
  echo "setup.sh: the AVX-512 build crashed (signal $((rc - 128))); falling back to the portable AVX2 build" >&2
  install_avx2
  selfcheck
  if [ $rc -eq 0 ]; then
    touch "$crashed"
    echo "  (remembered in $crashed: delete it, then run bash scripts/setup.sh $profile, to try AVX-512 again)" >&2
  fi
fi
if [ $rc -ne 0 ]; then
  if instruction_fault; then
    echo "setup.sh: llama.cpp crashed (signal $((rc - 128))) while decoding a quantized model." >&2
    echo "  The installed llama-cpp-python build uses CPU instructions this machine cannot run." >&2
    echo "  Remove $llama_wheels and .venv, then adjust the cmake flags in scripts/setup.sh." >&2
  elif [ $rc -ge 128 ]; then
    echo "setup.sh: the decode self-check was killed (signal $((rc - 128)); out of memory?); run setup again." >&2
  else
    echo "setup.sh: the decode self-check failed (exit $rc); see the message above." >&2
  fi
  exit 1
fi
touch "$venv/.setup-$profile"
