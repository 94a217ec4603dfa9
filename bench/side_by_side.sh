#!/usr/bin/env bash
# reslab beside PyTorch on this machine: N interleaved rounds (one PyTorch run — eager, with the
# probes' statistics computed in hooks ("instrumented"), and under torch.compile — then one
# reslab run, so both see the same load), then the medians per model and mode, the ratios the
# targets of BENCHMARKS.md are stated in, and GFLOP/s. torch.compile's compilation happens in
# the untimed warm-up steps; its time is reported separately.
#
#   bench/side_by_side.sh                                   # 3 rounds, both CIFAR nets and mlp-res-20
#   bench/side_by_side.sh --rounds 5 --models cifar-resnet-20 --steps 16
#
# Options (all optional):
#   --rounds N         interleaved rounds (default 3)
#   --models LIST      comma-separated reference models (default cifar-resnet-20,cifar-plain-20,mlp-res-20)
#   --steps N          timed steps per run for both sides (default: each side's own default,
#                      50 for MLPs and 8 for CIFAR nets)
#   --reslab BIN       the reslab binary (default: target/release/reslab, built if missing)
#   --reference PATH   PyTorch's bench script (default: scripts/pytorch/bench_models.py)
#   --python PY        the Python with torch (default: $PYTHON, else /tmp/torchvenv/bin/python, else python3)
#   --threads N        PyTorch threads (default 2, bench_models.py's default)
#   --out DIR          keep every run's raw output there (default: a temporary folder)
#   --no-compile       leave out the torch.compile mode (it needs a C++ compiler; 10–45 s of
#                      compilation per model in the first round on the project's machine, less
#                      once torch's cache holds it; always outside the timed steps)
#
# Nothing here is installed or downloaded; PyTorch must already be importable by --python.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
rounds=3
models="cifar-resnet-20,cifar-plain-20,mlp-res-20"
steps=0
reslab=""
reference="$repo/scripts/pytorch/bench_models.py"
python="${PYTHON:-}"
threads=2
out=""
compile=(--compile)

die() { echo "side_by_side.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="${2:?}"; shift 2 ;;
    --models) models="${2:?}"; shift 2 ;;
    --steps) steps="${2:?}"; shift 2 ;;
    --reslab) reslab="${2:?}"; shift 2 ;;
    --reference) reference="${2:?}"; shift 2 ;;
    --python) python="${2:?}"; shift 2 ;;
    --threads) threads="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --no-compile) compile=(); shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive number, not \"$rounds\""
[[ "$steps" =~ ^[0-9]+$ ]] || die "--steps takes a number, not \"$steps\""
[ -f "$reference" ] || die "no PyTorch bench script at $reference (pass --reference PATH)"
if [ -z "$python" ]; then
  if [ -x /tmp/torchvenv/bin/python ]; then python=/tmp/torchvenv/bin/python; else python=python3; fi
fi
"$python" -c "import torch" 2>/dev/null || die "$python cannot import torch (pass --python PY)"
if [ -z "$reslab" ]; then
  reslab="${CARGO_TARGET_DIR:-$repo/target}/release/reslab"
  [ -x "$reslab" ] || (cd "$repo" && cargo build --release --quiet)
fi
[ -x "$reslab" ] || die "no reslab binary at $reslab (pass --reslab BIN)"
if [ -z "$out" ]; then out="$(mktemp -d)"; else mkdir -p "$out"; fi

step_args=()
[ "$steps" -gt 0 ] && step_args=(--steps "$steps")
echo "reslab: $reslab; PyTorch: $("$python" -c 'import torch; print(torch.__version__)') with $threads threads; $rounds rounds; raw output in $out"
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds: $(uptime | sed 's/.*load/load/')"
  "$python" "$reference" --threads "$threads" --models "$models" "${step_args[@]}" "${compile[@]}" > "$out/pytorch.$r.txt"
  "$reslab" bench --json --models "$models" --probe-every 0,10,1 "${step_args[@]}" > "$out/reslab.$r.jsonl"
done

python3 - "$out" "$rounds" "$models" "$reslab" <<'EOF'
import json, re, statistics, subprocess, sys
out, rounds, models, reslab = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
# Training FLOPs per sample (3 × the forward FLOPs that `reslab presets` lists; the bench
# uses the same count), for PyTorch's GFLOP/s.
flops = {}
for line in subprocess.run([reslab, "presets"], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[2].isdigit():
        flops[parts[0]] = 3 * int(parts[2])
runs = {}  # (model, mode) -> [samples/s per round]
warmup = {}  # model -> [torch.compile's warm-up seconds per round, compilation included]
in_run = {}  # model -> [the probes-every-10 run's own probe cost per round]
for r in range(1, rounds + 1):
    for line in open(f"{out}/pytorch.{r}.txt"):
        m = re.match(r"(\S+) (bare|instrumented|compiled): ([0-9.]+) samples/s.*?(?:warm-up ([0-9.]+) s)?$", line.strip())
        if m:
            runs.setdefault((m[1], "PyTorch " + m[2]), []).append(float(m[3]))
            if m[2] == "compiled" and m[4]:
                warmup.setdefault(m[1], []).append(float(m[4]))
    for line in open(f"{out}/reslab.{r}.jsonl"):
        j = json.loads(line)
        mode = {0: "reslab probes off", 10: "reslab probes every 10", 1: "reslab probes every step"}[j["probe_every"]]
        runs.setdefault((j["model"], mode), []).append(j["samples_per_sec"])
        if j["probe_every"] == 10 and j.get("amortized_cost") is not None:
            in_run.setdefault(j["model"], []).append(j["amortized_cost"])
def compile_time(secs):
    # The first round compiles; later ones mostly read torch's on-disk cache.
    if not secs:
        return "not reported"
    later = f", later rounds median {statistics.median(secs[1:]):.1f} s" if len(secs) > 1 else ""
    return f"first round {secs[0]:.1f} s{later}"
modes = ["PyTorch bare", "PyTorch instrumented", "PyTorch compiled", "reslab probes off", "reslab probes every 10", "reslab probes every step"]
for model in models:
    print(f"\n{model} (samples/s; medians of {rounds} interleaved rounds)")
    med = {}
    for mode in modes:
        v = runs.get((model, mode), [])
        if not v:
            continue
        med[mode] = statistics.median(v)
        gf = med[mode] * flops.get(model, 0) / 1e9
        rs = " / ".join(f"{x:,.0f}" for x in v)
        print(f"  {mode:<26} {med[mode]:>9,.0f}   {gf:6.1f} GFLOP/s   rounds: {rs}")
    # Ratios per round, then their median: both sides of a round saw the same load.
    per = lambda a, b: statistics.median(x / y for x, y in zip(runs[(model, a)], runs[(model, b)]))
    every, bare, inst = med.get("reslab probes every step"), med.get("PyTorch bare"), med.get("PyTorch instrumented")
    if every and bare and inst:
        print(f"  every step / PyTorch bare: {per('reslab probes every step', 'PyTorch bare'):.2f}x, "
              f"/ PyTorch instrumented: {per('reslab probes every step', 'PyTorch instrumented'):.2f}x")
    if every and med.get("PyTorch compiled"):
        print(f"  every step / torch.compile: {per('reslab probes every step', 'PyTorch compiled'):.2f}x, "
              f"probes off / torch.compile: {per('reslab probes off', 'PyTorch compiled'):.2f}x; "
              f"torch.compile's warm-up (compilation, untimed): {compile_time(warmup.get(model, []))}")
    off, ten = runs.get((model, "reslab probes off")), runs.get((model, "reslab probes every 10"))
    if off and ten:
        cost = statistics.median(o / t - 1 for o, t in zip(off, ten))
        print(f"  probes every 10 steps cost {100 * cost:+.1f} % against probes off (median over rounds)")
    if in_run.get(model):
        # Probe steps against plain steps within each run: the machine's drift cancels.
        cost = statistics.median(in_run[model])
        print(f"  probes every 10 steps cost {100 * cost:+.1f} % within the run (median over rounds)")
EOF
