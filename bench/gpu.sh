#!/usr/bin/env bash
# reslab's wgpu path beside PyTorch (CUDA) on the same GPU: cifar-resnet-20, mlp-res-20 and,
# when reslab has it, vit-res-12; probes off and every step, PyTorch bare and instrumented.
# Builds nothing: it takes the binary as an argument, so it can run on a GPU machine without a
# toolchain or network. About 1–3 minutes on a data-centre GPU.
#
#   bench/gpu.sh RESLAB_BIN [PATH/bench_models.py] [--python PY] [--steps N] [--cifar-steps N]
#
#   RESLAB_BIN        a reslab release binary (e.g. target/release/reslab, copied over)
#   bench_models.py   the script whose models PyTorch trains (default:
#                     scripts/pytorch/bench_models.py of this repository)
#   --python PY       the Python with torch (default: python3)
#   --steps N         timed steps of the MLP/ViT runs (default 50)
#   --cifar-steps N   timed steps of the CIFAR runs (default 20)
#   --out FILE        also write everything printed to FILE
#   --timeout S       stop a reslab run after S seconds (default 240), PyTorch after 180
#
# reslab runs with `--device gpu` (wgpu: Vulkan on Linux); when wgpu finds no adapter it says so
# and the script goes on with PyTorch. Without CUDA PyTorch runs on the CPU and says so (a way
# to check the script on a machine without a GPU, e.g. with Mesa's lavapipe for wgpu).
set -uo pipefail

die() { echo "gpu.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: bench/gpu.sh RESLAB_BIN [PATH/bench_models.py] [--python PY] [--steps N] [--cifar-steps N] [--out FILE] [--timeout S]"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
reslab="$1"; shift
reference="$here/../scripts/pytorch/bench_models.py"
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then reference="$1"; shift; fi
python=python3; steps=50; cifar_steps=20; out=""; limit=240
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python="${2:?}"; shift 2 ;;
    --steps) steps="${2:?}"; shift 2 ;;
    --cifar-steps) cifar_steps="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --timeout) limit="${2:?}"; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[ -x "$reslab" ] || die "$reslab is not an executable reslab binary"
[ -f "$reference" ] || die "no reference script at $reference"
[[ "$steps" =~ ^[1-9][0-9]*$ && "$cifar_steps" =~ ^[1-9][0-9]*$ && "$limit" =~ ^[1-9][0-9]*$ ]] \
  || die "--steps, --cifar-steps and --timeout take positive numbers"
if [ -n "$out" ]; then exec > >(tee "$out") 2>&1; fi

echo "== machine"
uname -a
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
# wgpu needs a Vulkan driver: list the installed ones (nvidia_icd.json for the NVIDIA GPU).
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' '; echo
"$reslab" --version 2>/dev/null || true
start=$(date +%s)

echo "== reslab, wgpu (--device gpu)"
models="cifar-resnet-20 mlp-res-20 vit-res-12"
for m in $models; do
  if [ "$m" = "cifar-resnet-20" ]; then n=$cifar_steps; else n=$steps; fi
  # Exit code 2 is an unknown model (vit-res-12 before the lab has it): say so and go on.
  timeout "$limit" "$reslab" bench --device gpu --models "$m" --probe-every 0,1 --steps "$n"
  rc=$?
  case $rc in
    0) ;;
    2) echo "reslab: $m is not available in this binary (or no GPU adapter); skipped" ;;
    124) echo "reslab: $m took over $limit s; stopped" ;;
    *) echo "reslab: $m failed (exit $rc)" ;;
  esac
done

echo "== PyTorch ($python)"
timeout 180 "$python" "$here/pytorch_gpu.py" --reference "$reference" \
  --models cifar-resnet-20,mlp-res-20,vit-res-12 --steps "$steps" || echo "PyTorch run failed (exit $?)"
echo "== done in $(( $(date +%s) - start )) s"
