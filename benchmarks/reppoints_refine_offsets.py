"""Measure the refine offsets Eq. 10's projection targets ask for, with the stock Oriented
RepPoints head in a tiny detector trained briefly on synthetic SODA-A-like images: the record
behind ``ugs.rotated.reppoints_head.UGS_REPPOINTS_DEFAULTS`` (alpha = 6 feature-map cells).

    python benchmarks/reppoints_refine_offsets.py 400 > benchmarks/results/reppoints_refine_offsets.log

(400 steps, about 30 min on 2 CPU cores; every 100 steps a JSON line with the percentiles of
``|projection of the refined point - init point| / stride`` per coordinate at the refine
positives and the share beyond 2, 3, 4, 6 and 8 cells.)"""
import math, sys, time, logging, json
import numpy as np, torch, cv2
import ugs.openmmlab.compat
from ugs.rotated.cpu_ops import install
install()
from mmengine.registry import DefaultScope
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from mmengine.logging import MMLogger
from mmrotate.registry import MODELS
from mmrotate.utils import register_all_modules
from mmrotate.structures.bbox import RotatedBoxes
from mmdet.structures import DetDataSample
from ugs.polygon_projection import project_to_polygon_boundary, qbox_vertices
register_all_modules(init_default_scope=False)
MMLogger.get_current_instance().setLevel(logging.WARNING)
torch.manual_seed(0); torch.set_num_threads(2)
S = 256
norm = dict(type='GN', num_groups=16, requires_grad=True)
model_cfg = dict(type='mmdet.RepPointsDetector',
  data_preprocessor=dict(type='mmdet.DetDataPreprocessor', mean=[120.]*3, std=[60.]*3, bgr_to_rgb=False, pad_size_divisor=32),
  backbone=dict(type='mmdet.ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(0,1,2,3), norm_cfg=dict(type='BN'), style='pytorch'),
  neck=dict(type='mmdet.FPN', in_channels=[16,32,64,128], out_channels=32, start_level=1, add_extra_convs='on_input', num_outs=5, norm_cfg=norm),
  bbox_head=dict(type='OrientedRepPointsHead', num_classes=9, in_channels=32, feat_channels=32, point_feat_channels=32,
    stacked_convs=2, num_points=9, gradient_mul=0.3, point_strides=[8,16,32,64,128], point_base_scale=2, norm_cfg=norm,
    loss_cls=dict(type='mmdet.FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox_init=dict(type='ConvexGIoULoss', loss_weight=0.375), loss_bbox_refine=dict(type='ConvexGIoULoss', loss_weight=1.0),
    loss_spatial_init=dict(type='SpatialBorderLoss', loss_weight=0.05), loss_spatial_refine=dict(type='SpatialBorderLoss', loss_weight=0.1),
    init_qua_weight=0.2, top_ratio=0.4),
  train_cfg=dict(init=dict(assigner=dict(type='ConvexAssigner', scale=4, pos_num=1), allowed_border=-1, pos_weight=-1, debug=False),
     refine=dict(assigner=dict(type='MaxConvexIoUAssigner', pos_iou_thr=0.1, neg_iou_thr=0.1, min_pos_iou=0, ignore_iof_thr=-1), allowed_border=-1, pos_weight=-1, debug=False)),
  test_cfg=dict(nms_pre=2000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms_rotated', iou_threshold=0.4), max_per_img=2000))
with DefaultScope.overwrite_default_scope("mmrotate"):
    model = MODELS.build(ConfigDict(model_cfg))
model.init_weights()
head = model.bbox_head
rng = np.random.default_rng(0)
COL = rng.uniform(30, 255, (9, 3)); ASP = [1.1, 1.3, 2.0, 3.0, 3.5, 2.5, 1.0, 1.6, 1.0]

def batch(n=4):
    imgs, samples = [], []
    for _ in range(n):
        img = np.clip(rng.normal(100, 12, (S, S, 3)), 0, 255).astype(np.uint8)
        boxes, labels = [], []
        for _ in range(rng.integers(4, 12)):
            c = int(rng.integers(0, 9)); side = min(64, 21 * math.exp(rng.normal(0, 0.5)))
            w, h = side * math.sqrt(ASP[c]), side / math.sqrt(ASP[c])
            w, h = max(w, 4), max(h, 4)
            cx, cy = rng.uniform(20, S - 20, 2); a = rng.uniform(-math.pi / 2, math.pi / 2)
            rb = RotatedBoxes(torch.tensor([[cx, cy, w, h, a]], dtype=torch.float32)).regularize_boxes('le90')
            q = RotatedBoxes(rb).convert_to('qbox').tensor[0].numpy().reshape(4, 2)
            cv2.fillPoly(img, [np.round(q).astype(np.int32)], tuple(float(v) for v in COL[c]))
            boxes.append(q.reshape(8)); labels.append(c)
        ds = DetDataSample(metainfo=dict(img_shape=(S, S), pad_shape=(S, S), batch_input_shape=(S, S), ori_shape=(S, S), scale_factor=(1., 1.)))
        gi = InstanceData(); gi.bboxes = torch.tensor(np.array(boxes), dtype=torch.float32); gi.labels = torch.tensor(labels)
        ds.gt_instances = gi
        imgs.append(torch.from_numpy(img).permute(2, 0, 1).float())
        samples.append(ds)
    return torch.stack(imgs), samples

cap = {}
orig_gt, orig_sel = head.get_targets, head.dynamic_pointset_samples_selection
def gt_hook(*a, stage='init', **k):
    r = orig_gt(*a, stage=stage, **k)
    if stage == 'refine': cap['bbox_gt'] = r[2]
    return r
def sel_hook(*a, **k):
    r = orig_sel(*a, **k); cap.setdefault('labels', []).append(r[0]); return r
head.get_targets, head.dynamic_pointset_samples_selection = gt_hook, sel_hook

def needed(outs):
    cls, init, refine, base = outs
    sizes = [tuple(p.shape[-2:]) for p in cls]
    starts = np.cumsum([0] + [h * w for h, w in sizes])
    priors = head.prior_generator.grid_priors(sizes, device='cpu')
    res = []
    for lvl, (h, w) in enumerate(sizes):
        for i, (lab, polys) in enumerate(zip(cap['labels'], cap['bbox_gt'])):
            pos = ((lab >= 0) & (lab < 9)).nonzero().reshape(-1)
            pos = pos[(pos >= starts[lvl]) & (pos < starts[lvl + 1])]
            if not len(pos): continue
            loc = pos - starts[lvl]; r, c = loc // w, loc % w; s = head.point_strides[lvl]
            ctr = priors[lvl][loc, :2]
            pi = ctr[:, None] + s * init[lvl][i][:, r, c].T.reshape(-1, 9, 2).flip(-1).detach()
            pr = ctr[:, None] + s * refine[lvl][i][:, r, c].T.reshape(-1, 9, 2).flip(-1).detach()
            proj, _ = project_to_polygon_boundary(pr, qbox_vertices(polys[pos]))
            res.append(((proj - pi) / s).reshape(-1).abs())
    return torch.cat(res) if res else torch.zeros(0)

def measure(tag, nb=4):
    model.train(); vals = []
    with torch.no_grad():
        for _ in range(nb):
            imgs, samples = batch()
            d = model.data_preprocessor(dict(inputs=list(imgs.to(torch.uint8)), data_samples=samples), True)
            x = model.extract_feat(d['inputs'])
            outs = head(x); cap.clear()
            head.loss_by_feat(*outs, [s.gt_instances for s in d['data_samples']], [s.metainfo for s in d['data_samples']])
            vals.append(needed(outs))
    v = torch.cat(vals).numpy()
    q = np.percentile(v, [50, 90, 95, 99, 99.9])
    print(json.dumps(dict(tag=tag, n=int(v.size), p50_90_95_99_999=[round(float(a), 3) for a in q],
                          frac_over={a: round(float((v > a).mean()), 4) for a in (2, 3, 4, 6, 8)})), flush=True)

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
measure('step0')
t = time.time()
for it in range(1, steps + 1):
    imgs, samples = batch()
    d = model.data_preprocessor(dict(inputs=list(imgs.to(torch.uint8)), data_samples=samples), True)
    cap.clear()
    losses = model.loss(d['inputs'], d['data_samples'])
    loss, logv = model.parse_losses(losses)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 35); opt.step()
    if it % 25 == 0:
        print(it, round(time.time() - t, 1), {k: round(float(v), 3) for k, v in logv.items()}, flush=True)
    if it % 100 == 0:
        measure(f'step{it}')
