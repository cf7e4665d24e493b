#!/usr/bin/env bash
# The kit's GPU check, for a machine with a CUDA GPU and Python >= 3.11 (run from the repo root):
#   bash benchmarks/gpu_check.sh OUT_DIR [WHEEL_DIR]
#   STEPS="rotated_ops tables234 dino cuda_ops" bash benchmarks/gpu_check.sh OUT_DIR .whl   # the default
#   STEPS="tables16 loss_balance table5" bash benchmarks/gpu_check.sh OUT_DIR .whl           # session 4's
# Installs mmengine / mmdet / mmyolo / mmrotate from WHEEL_DIR when the stack is missing (offline
# machines) and compiles mmcv 2.0.1 there for its CPU ops (CUDA hidden; its full CUDA build does
# not compile against a recent torch in the minutes a check has). In parallel,
# benchmarks/mmcv_cuda_ops.py compiles mmcv's own CUDA kernels of the ops the checks need (the
# rotated ones, nms, RoIAlign, the focal loss, the deformable attention) from the same source
# release. Then, writing into OUT_DIR, each step of STEPS (in this order):
#   rotated_ops  the kit's plain-PyTorch rotated ops against mmcv's CUDA kernels (rotated_ops_cuda.json)
#   tables234    one paper-profile iteration and one inference per config of Tables 2, 3 and 4
#                at full size on CUDA with mmcv's kernels (paper_step_tables234_cuda.json;
#                TABLES234_ARGS="--configs ..." picks other configs)
#   dino         DINO and DINO w/ UGS at 4 images with mmcv's deformable-attention kernel
#                (paper_step_dino_cuda.json; session 4 had only its PyTorch version: 2 images)
#   cuda_ops     each built op called once on CUDA, against mmcv's CPU op where it has one (mmcv_cuda_ops.json)
#   tables16     Tables 1 and 6 and the FCOS control with the PyTorch stand-ins (--pytorch-ops)
#   loss_balance DINO w/ UGS's loss weight rule at the paper's image size
#   table5       Table 5's timings (benchmarks/training_cost.py --setting paper) with mmcv's CUDA
#                focal-loss kernel (TABLE5_ARGS=--pytorch-focal-loss: session 4's PyTorch stand-in)
# Everything printed also goes to OUT_DIR/gpu_check.log.
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR [WHEEL_DIR]}; wheels=${2:-.whl}
steps=" ${STEPS:-rotated_ops tables234 dino cuda_ops} "
mkdir -p "$out"
exec > >(tee -a "$out/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD:${PYTHONPATH:-} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
src_tar="$wheels/mmcv-2.0.1.tar.gz"; cuda_build=/tmp/mmcv_cuda_ops
t0=$SECONDS
echo "gpu_check: steps$steps; $(date -u +%FT%TZ)"
# mmcv's CUDA kernels (needs only torch): started first, in the background
python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import mmcv_cuda_ops as m; m.build('$src_tar', '$cuda_build')" \
    > "$out/mmcv_cuda_build.log" 2>&1 &
cuda_pid=$!
if ! python3 -c "import mmcv.ops, mmdet, mmyolo, mmrotate" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$wheels"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PYTHONPATH
    src=/tmp/mmcv-src; rm -rf "$src"; mkdir -p "$src"; tar xzf "$src_tar" -C "$src"
    # mmcv 2.0.1 forces -std=c++14; torch >= 2.1 headers need C++17
    (cd "$src"/mmcv-2.0.1 && sed -i 's/c++14/c++17/g' setup.py &&
     CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) timeout 600 python3 setup.py build_ext --inplace) \
        > /tmp/mmcv_cpu_build.log 2>&1
    echo "mmcv CPU-ops build exit $? ($((SECONDS - t0)) s)"; tail -2 /tmp/mmcv_cpu_build.log
    export PYTHONPATH=$src/mmcv-2.0.1:$PYTHONPATH
fi
wait $cuda_pid; echo "mmcv CUDA-ops build exit $? ($((SECONDS - t0)) s)"
grep -E "built |Error|error:" "$out/mmcv_cuda_build.log" | head -30
python3 -c "import torch, mmcv, mmdet, mmengine, mmyolo, mmrotate; print('torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmengine', mmengine.__version__, 'mmyolo', mmyolo.__version__, 'mmrotate', mmrotate.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
ops="--mmcv-cuda-ops $src_tar --mmcv-cuda-build-dir $cuda_build"
run() {   # run NAME TIMEOUT COMMAND...: the step's output in the log, its exit status and time
    local name=$1 limit=$2; shift 2; local s=$SECONDS
    echo "== $name: $*"
    timeout "$limit" "$@" 2>&1 | grep -v -E "Warning|warn\(|^ *$" | cut -c1-400
    echo "== $name exit ${PIPESTATUS[0]} ($((SECONDS - s)) s)"
}
[[ $steps == *" rotated_ops "* ]] && run rotated_ops 90 python3 benchmarks/rotated_ops_cuda.py \
    --mmcv-cuda-ops "$src_tar" --out "$out/rotated_ops_cuda.json"
[[ $steps == *" tables234 "* ]] && run tables234 240 python3 benchmarks/paper_step.py --device cuda \
    ${TABLES234_ARGS:---tables 2 3 4} $ops --out "$out/paper_step_tables234_cuda.json"
[[ $steps == *" dino "* ]] && run dino 90 python3 benchmarks/paper_step.py --device cuda --images 4 \
    --configs dino/dino_5scale_r50_24e_visdrone.py dino/dino_5scale_r50_ugs_24e_visdrone.py $ops \
    --out "$out/paper_step_dino_cuda.json"
[[ $steps == *" cuda_ops "* ]] && run cuda_ops 150 python3 benchmarks/mmcv_cuda_ops.py --src "$src_tar" \
    --build-dir $cuda_build --smoke-jobs 12 --out "$out/mmcv_cuda_ops.json"
[[ $steps == *" tables16 "* ]] && run tables16 300 python3 benchmarks/paper_step.py --device cuda \
    --tables 1 control 6 --pytorch-ops --out "$out/paper_step_cuda.json"
if [[ $steps == *" loss_balance "* ]]; then
    python3 -m ugs.cli data synth data/synthetic > /dev/null 2>&1 || echo "synthetic set: generation failed"
    run loss_balance 200 python3 -m ugs.openmmlab.loss_balance configs/dino/dino_5scale_r50_24e_visdrone.py \
        configs/dino/dino_5scale_r50_ugs_24e_visdrone.py --data-root data/synthetic --device cuda \
        ${LB_ARGS:---batches 6 --batch-size 4} --pytorch-ops --out "$out/dino_loss_balance_paper_cuda.json"
fi
[[ $steps == *" table5 "* ]] && run table5 170 python3 benchmarks/training_cost.py --setting paper --device cuda \
    --repeats 20 --warmup 5 ${TABLE5_ARGS:-$ops} --out "$out/training_cost_paper_cuda.json"
echo "gpu_check: done in $((SECONDS - t0)) s"
