#!/usr/bin/env bash
# The kit's GPU check, for a machine with a CUDA GPU and Python >= 3.11 (run from the repo root):
#   bash benchmarks/gpu_check.sh OUT_DIR [WHEEL_DIR]
# Installs mmengine / mmdet (and mmcv 2.0.1, compiled against the machine's torch) from
# WHEEL_DIR when the stack is missing (offline machines), then runs, writing into OUT_DIR:
#   1. benchmarks/paper_step.py --all: one paper-profile iteration and one inference per paper
#      config (Table 1, the FCOS control, Table 6) on CUDA at 4 x 1333x800;
#   2. python -m ugs.openmmlab.loss_balance: DINO w/ UGS's loss weight rule at the paper's
#      image size (on the kit's synthetic set, generated here);
#   3. with UGS_GPU_TABLE5=1, benchmarks/training_cost.py --setting paper: Table 5's timings;
#   4. benchmarks/rotated_ops_cuda.py: the CPU rotated ops against mmcv's CUDA kernels (Table 3).
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
[ -n "${src:-}" ] && fallback="--pytorch-ops"   # mmcv compiled here without CUDA ops
python3 -c "import torch, mmcv, mmdet, mmengine; print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmengine', mmengine.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# PAPER_STEP_ARGS / LB_ARGS override the defaults (e.g. DINO alone on 2 images: mmcv's PyTorch
# multi-scale deformable attention, the stand-in for its CUDA kernel, needs ~93 GB for DINO on 4)
timeout 260 python3 benchmarks/paper_step.py ${PAPER_STEP_ARGS:---all} --device cuda $fallback --out "$out/paper_step_cuda.json" \
    > "$out/paper_step_cuda.log" 2>&1
echo "paper_step exit $?"; cut -c1-300 "$out/paper_step_cuda.log" | grep -v Warning | tail -30
python3 -m ugs.cli data synth data/synthetic > /dev/null 2>&1 || echo "synthetic set: generation failed"
lb_fallback=""; [ -n "$fallback" ] && lb_fallback="--pytorch-ops"
timeout 200 python3 -m ugs.openmmlab.loss_balance configs/dino/dino_5scale_r50_24e_visdrone.py \
    configs/dino/dino_5scale_r50_ugs_24e_visdrone.py --data-root data/synthetic --device cuda \
    ${LB_ARGS:---batches 6 --batch-size 4} $lb_fallback --out "$out/dino_loss_balance_paper_cuda.json" > "$out/loss_balance.log" 2>&1
echo "loss_balance exit $?"; grep -E "^batch|median|Error|error" "$out/loss_balance.log" | tail -12
if [ "${UGS_GPU_TABLE5:-0}" = 1 ]; then
    fl=""; [ -n "$fallback" ] && fl="--pytorch-focal-loss"
    timeout 170 python3 benchmarks/training_cost.py --setting paper --device cuda --repeats 20 --warmup 5 $fl \
        --out "$out/training_cost_paper_cuda.json" > "$out/training_cost_paper_cuda.log" 2>&1
    echo "training_cost exit $?"; tail -40 "$out/training_cost_paper_cuda.log"
fi
# 4. the CPU versions of mmcv's CUDA-only rotated ops (Table 3) against mmcv's CUDA kernels; needs an
#    mmcv built with its CUDA ops (the build above hides CUDA, so there this reports them missing)
timeout 120 python3 benchmarks/rotated_ops_cuda.py --out "$out/rotated_ops_cuda.json" > "$out/rotated_ops_cuda.log" 2>&1
echo "rotated_ops_cuda exit $?"; tail -8 "$out/rotated_ops_cuda.log"
