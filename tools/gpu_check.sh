#!/usr/bin/env bash
# The GPU backends on a lent NVIDIA machine, in one prepared run: the CUDA and wgpu parity tests
# against the CPU backend, then encoder texts/s (batch 64 and 256), selector training pairs/s and
# scoring rows/s, and peak GPU memory, beside PyTorch CUDA in the same run; writes the table for
# BENCHMARKS.md. The device cannot reach a registry, so everything is built here and carried.
#
#   tools/gpu_check.sh kit [DIR]    here: release builds (--features cuda,wgpu) of vital, the
#                                   integration tests and the selector bench, the Vulkan loader
#                                   (Debian's libvulkan1) and MiniLM's shape (no weights) → DIR
#                                   (default gpu-kit, git-ignored; under the 64 MiB a run carries)
#   tools/gpu_check.sh run [DIR]    there (device tool: command "tools/gpu_check.sh run",
#                                   carry ["gpu-kit"]): writes $OUT/gpu_check.md and the logs
#   tools/gpu_check.sh dry-run      here, without a GPU: a kit built with --features wgpu, run on
#                                   lavapipe (a Vulkan device on the CPU) at small sizes, so the
#                                   script cannot fail on the device for a typo
#
# Environment: GPU_CHECK_BACKENDS (default "cuda wgpu"), GPU_CHECK_TEXTS (texts per encoder row,
# default 8192), GPU_CHECK_FEATURES (kit: default cuda,wgpu), VITAL_TEST_MINILM (kit: the real
# MiniLM folder whose shape is carried).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

kit() {
    local kit="${1:-gpu-kit}" features="${GPU_CHECK_FEATURES:-cuda,wgpu}"
    local target="${VITAL_BENCH_TARGET_DIR:-$HOME/.cache/vital-bench-target}"
    local minilm="${VITAL_TEST_MINILM:-$HOME/.cache/vital-models/all-MiniLM-L6-v2}"
    rm -rf "$kit" && mkdir -p "$kit/bin" "$kit/lib"
    export CARGO_TARGET_DIR="$target"
    echo "== release builds with --features $features into $target"
    cargo build --release --features "$features" --bin vital
    cp "$target/release/vital" "$kit/bin/vital"
    # The test and bench executables, as cargo names them (one JSON message per artifact).
    local exe
    exe=$(cargo test --release --features "$features" --test integration --no-run --message-format=json \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "integration"][-1])')
    cp "$exe" "$kit/bin/integration"
    exe=$(cargo bench --features "$features" --bench selector --no-run --message-format=json \
        | python3 -c 'import json,sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "selector"][-1])')
    cp "$exe" "$kit/bin/selector-bench"
    strip "$kit"/bin/*
    # xz: the three binaries are ~160 MB stripped, ~40 MB compressed (a run carries 64 MiB).
    xz -T0 -6 "$kit"/bin/*
    echo "== the Vulkan loader (the device has NVIDIA's Vulkan driver but no loader)"
    local deb
    deb="$(mktemp -d)"
    (cd "$deb" && apt-get download libvulkan1 >/dev/null && dpkg -x libvulkan1_*.deb x)
    # The library itself under the loader's name (a carried folder holds files, not links).
    cp -L "$deb"/x/usr/lib/*/libvulkan.so.1 "$kit/lib/libvulkan.so.1"
    rm -rf "$deb"
    echo "== MiniLM's shape (config, tokenizer, tensor shapes; random weights are made there)"
    python3 tools/random_weights.py template "$minilm" "$kit/minilm-shape"
    local size
    size=$(du -sm "$kit" | cut -f1)
    echo "$kit: ${size} MiB"
    [ "$size" -le 60 ] || { echo "error: $kit is ${size} MiB; a device run carries 64 MiB in all" >&2; exit 1; }
}

# Peak GPU memory (MiB above the idle level) while "$@" runs; prints "n/a" without nvidia-smi.
# The command's own output goes to $LOG.
with_memory() {
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        "$@" >"$LOG" 2>&1
        PEAK="n/a"
        return
    fi
    local idle samples pid
    idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1)
    samples="$(mktemp)"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$samples" &
    pid=$!
    "$@" >"$LOG" 2>&1 || { kill "$pid"; cat "$LOG" >&2; return 1; }
    kill "$pid" && wait "$pid" 2>/dev/null || true
    PEAK=$(sort -n "$samples" | tail -n 1)
    PEAK=$(( ${PEAK:-$idle} - idle ))
    rm -f "$samples"
}

run() {
    local kit="${1:-gpu-kit}"
    kit="$(cd "$kit" && pwd)"
    local out="${OUT:-$kit/out}" work
    mkdir -p "$out"
    work="$(mktemp -d)"
    local backends="${GPU_CHECK_BACKENDS:-cuda wgpu}" texts="${GPU_CHECK_TEXTS:-8192}"
    export LD_LIBRARY_PATH="$kit/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if [ -z "${VK_DRIVER_FILES:-}" ]; then
        local icd
        icd=$(ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json \
            /usr/share/glvnd/egl_vendor.d/*nvidia*.json 2>/dev/null | head -n 1 || true)
        [ -n "$icd" ] && export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
    fi
    mkdir -p "$work/bin"
    local exe
    for exe in vital integration selector-bench; do
        xz -dc "$kit/bin/$exe.xz" >"$work/bin/$exe"
        chmod +x "$work/bin/$exe"
    done
    local table="$out/gpu_check.md" vital="$work/bin/vital"
    {
        echo "# tools/gpu_check.sh run, $(date -u +%Y-%m-%dT%H:%MZ)"
        echo
        echo "- machine: $(nvidia-smi -L 2>/dev/null | head -n 1 || echo 'no nvidia-smi'), $(nproc) cores"
        echo "- backends: $backends; Vulkan driver: ${VK_DRIVER_FILES:-none set, the loader searches}"
        echo "- PyTorch: $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null || echo 'not installed')"
        echo
    } >"$table"

    echo "== parity tests (the tests/integration/gpu.rs group, CI=true: a missing device fails)"
    python3 tools/random_weights.py fill "$kit/minilm-shape" "$work/minilm" >/dev/null
    echo "| parity tests | passed | failed |" >>"$table"
    echo "|---|---:|---:|" >>"$table"
    local b status
    for b in $backends; do
        status=0
        CI=true VITAL_TEST_BIN="$vital" VITAL_REPO_ROOT="$ROOT" VITAL_TEST_MINILM="$work/minilm" \
            "$work/bin/integration" "gpu::$b::" --test-threads 1 >"$out/parity-$b.log" 2>&1 || status=$?
        local passed failed
        # The harness's summary line (a test's own output can share its "... ok" line).
        passed=$(grep -o '[0-9]* passed' "$out/parity-$b.log" | tail -n 1 | cut -d' ' -f1 || true)
        failed=$(grep -o '[0-9]* failed' "$out/parity-$b.log" | tail -n 1 | cut -d' ' -f1 || true)
        echo "| $b (log: parity-$b.log, exit $status) | $passed | $failed |" >>"$table"
        echo "$b: $passed passed, $failed failed"
    done

    echo "== encoder texts/s: MiniLM's shape (random weights), $texts texts of 40-110 words"
    python3 tools/gpu_bench_torch.py texts --model "$work/minilm" --count "$texts" --out "$work/texts.jsonl"
    {
        echo
        echo "| encoder (MiniLM-L6 shape) | batch | texts/s | peak GPU MiB |"
        echo "|---|---:|---:|---:|"
    } >>"$table"
    local bs rate
    for bs in 64 256; do
        for b in $backends; do
            LOG="$out/encode-$b-$bs.log"
            with_memory "$vital" encode --encoder "$work/minilm" --backend "$b" --batch-size "$bs" "$work/texts.jsonl" \
                || { echo "| vital $b | $bs | failed (encode-$b-$bs.log) | |" >>"$table"; continue; }
            rate=$(grep -o '[0-9.]* texts/s' "$LOG" | tail -n 1)
            echo "| vital $b | $bs | ${rate% texts/s} | $PEAK |" >>"$table"
        done
        if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
            LOG="$out/encode-torch-$bs.log"
            python3 tools/gpu_bench_torch.py encode --model "$work/minilm" --device cuda --batch-size "$bs" \
                "$work/texts.jsonl" >"$LOG" 2>&1 || true
            rate=$(grep -o '[0-9.]* texts/s' "$LOG" | tail -n 1 || true)
            echo "| PyTorch CUDA | $bs | ${rate% texts/s} | $(grep -o 'peak [0-9]*' "$LOG" | cut -d' ' -f2 || true) (allocated) |" >>"$table"
        else
            echo "| PyTorch CUDA | $bs | skipped: no torch with CUDA here | |" >>"$table"
        fi
    done
    # A vital build that cannot run a backend says so in its log; the table points there.

    echo "== selector: the 1024-512-512-1 pairwise MLP, training and scoring"
    {
        echo
        echo "| selector MLP 1024-512-512-1 | train pairs/s (batch 64) | train pairs/s (batch 256) | score rows/s | peak GPU MiB |"
        echo "|---|---:|---:|---:|---:|"
    } >>"$table"
    local rates
    for b in $backends; do
        LOG="$out/selector-$b.log"
        with_memory env SELECTOR_BENCH_BACKEND="$b" SELECTOR_BENCH_MLP_ONLY=1 "$work/bin/selector-bench" \
            || { echo "| vital $b | failed (selector-$b.log) | | | |" >>"$table"; continue; }
        rates=$(awk '/^train MLP|^score MLP/ {for (i = 1; i <= NF; i++) if ($i ~ /s$/ && $(i+1) ~ /^[0-9]+$/) print $(i+1)}' "$LOG" | paste -sd'|' -)
        echo "| vital $b | ${rates//|/ | } | $PEAK |" >>"$table"
    done
    if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
        LOG="$out/selector-torch.log"
        python3 benches/selector_torch.py --device cuda --mlp-only >"$LOG" 2>&1 || true
        rates=$(awk '/^train MLP|^score MLP/ {for (i = 1; i <= NF; i++) if ($i ~ /s$/ && $(i+1) ~ /^[0-9]+$/) print $(i+1)}' "$LOG" | paste -sd'|' -)
        echo "| PyTorch CUDA | ${rates//|/ | } | $(grep -o 'peak GPU memory [0-9]*' "$LOG" | awk '{print $4}') (allocated) |" >>"$table"
    else
        echo "| PyTorch CUDA | skipped: no torch with CUDA here | | | |" >>"$table"
    fi
    rm -rf "$work"
    echo
    cat "$table"
}

case "${1:-}" in
    kit) kit "${2:-gpu-kit}" ;;
    run) run "${2:-gpu-kit}" ;;
    dry-run)
        # lavapipe stands in for the GPU; small sizes; the kit's features without CUDA.
        icd="$(ls /usr/share/vulkan/icd.d/lvp_icd.*.json 2>/dev/null | head -n 1 || true)"
        [ -n "$icd" ] || { echo "error: no lavapipe (apt install mesa-vulkan-drivers libvulkan1)" >&2; exit 1; }
        GPU_CHECK_FEATURES=wgpu kit "${2:-gpu-kit}"
        VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd" GPU_CHECK_BACKENDS=wgpu GPU_CHECK_TEXTS=128 \
            run "${2:-gpu-kit}"
        ;;
    *)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
