#!/usr/bin/env bash
# The kit's GPU check, for a machine with a CUDA GPU and Python >= 3.11 (run from the repo root):
#   bash benchmarks/gpu_check.sh OUT_DIR [WHEEL_DIR]
# Installs mmengine / mmdet (and mmcv 2.0.1, compiled against the machine's torch) from
# WHEEL_DIR when the stack is missing (offline machines), then runs, writing into OUT_DIR:
#   1. benchmarks/paper_step.py: one paper-profile iteration per Table 1 config on CUDA,
#   2. benchmarks/training_cost.py --setting paper --device cuda: Table 5's timings.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [WHEEL_DIR]}; wheels=${2:-.whl}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:${PYTHONPATH:-}
if ! python3 -c "import mmcv.ops, mmdet" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$wheels"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PYTHONPATH
    src=/tmp/mmcv-src; rm -rf "$src"; mkdir -p "$src"; tar xzf "$wheels"/mmcv-2.0.1.tar.gz -C "$src"
    # mmcv 2.0.1 forces -std=c++14; torch >= 2.1 headers need C++17. Only mmcv's CPU ops are
    # compiled here (CUDA hidden during the build): the CUDA-only ops stay unavailable.
    (cd "$src"/mmcv-2.0.1 && sed -i 's/c++14/c++17/g' setup.py &&
     CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) python3 setup.py build_ext --inplace) > "$out/mmcv_build.log" 2>&1
    echo "mmcv build exit $? (log $out/mmcv_build.log)"; tail -3 "$out/mmcv_build.log"
    export PYTHONPATH=$src/mmcv-2.0.1:$PYTHONPATH
fi
fallback=""
[ -n "${src:-}" ] && fallback="--pytorch-focal-loss"   # mmcv compiled here without CUDA ops
python3 -c "import torch, mmcv, mmdet, mmengine; print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmengine', mmengine.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
timeout 180 python3 benchmarks/paper_step.py --device cuda $fallback --out "$out/paper_step_cuda.json"
echo "paper_step exit $?"
timeout 170 python3 benchmarks/training_cost.py --setting paper --device cuda --repeats 20 --warmup 5 $fallback \
    --out "$out/training_cost_paper_cuda.json" > "$out/training_cost_paper_cuda.log" 2>&1
echo "training_cost exit $?"; tail -40 "$out/training_cost_paper_cuda.log"
