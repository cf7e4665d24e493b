"""The training tool's CPU RoIAlign (``ugs.openmmlab.fast_roi_align``) gives mmcv's own CPU op's
numbers bit for bit: forward outputs and input gradients, over feature sizes, scales, sampling
ratios, ``aligned``, RoIs partly or wholly outside the feature map, and inside mmdet's RoI
extractor; what it does not handle goes to mmcv's op."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mmcv.ops")
pytest.importorskip("torchvision")

from mmcv.ops.roi_align import RoIAlignFunction  # noqa: E402  (mmcv's op, whatever is installed)

from ugs.openmmlab import fast_roi_align  # noqa: E402


def _rois(g, n, batch, extent):
    xy = torch.rand(n, 2, generator=g) * extent * 1.2 - 0.1 * extent     # some start outside
    wh = torch.rand(n, 2, generator=g) * extent * 0.6 + 0.5
    idx = torch.randint(0, batch, (n, 1), generator=g).float()
    return torch.cat([idx, xy, xy + wh], 1)


CASES = [  # batch, channels, h, w, rois, output, scale, sampling_ratio, aligned
    (2, 8, 16, 20, 50, (7, 7), 0.25, 0, True),
    (3, 5, 9, 7, 40, (3, 4), 0.5, 2, True),
    (1, 16, 32, 32, 120, (7, 7), 0.125, 0, False),
    (4, 3, 12, 12, 30, (2, 2), 1.0, 1, False),
    (2, 33, 10, 14, 64, (5, 5), 0.0625, 3, True),    # an odd channel count: uneven blocks
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_forward_and_gradient_equal_mmcvs_bit_for_bit(case, threads):
    b, c, h, w, n, out, scale, ratio, aligned = case
    g = torch.Generator().manual_seed(hash(case) % 1000)
    feat = torch.randn(b, c, h, w, generator=g)
    rois = _rois(g, n, b, max(h, w) / scale)
    grad = torch.randn(n, c, *out, generator=g)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = []
        for fn in (lambda x: RoIAlignFunction.apply(x, rois, out, scale, ratio, "avg", aligned),
                   lambda x: fast_roi_align.roi_align_cpu(x, rois, out, scale, ratio, aligned)):
            x = feat.clone().requires_grad_(True)
            y = fn(x)
            y.backward(grad)
            results.append((y.detach(), x.grad))
    finally:
        torch.set_num_threads(before)
    (y_mm, g_mm), (y_kit, g_kit) = results
    assert torch.equal(y_mm, y_kit)
    assert torch.equal(g_mm, g_kit)
    assert g_mm.abs().sum() > 0            # the RoIs reach the features: the check compares something


def test_install_routes_mmcvs_module_on_the_cpu_and_leaves_the_rest_to_mmcv():
    from mmcv.ops import RoIAlign

    module = fast_roi_align.mmcv_module()
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 4, 16, 16, generator=g)
    rois = _rois(g, 20, 2, 64)
    want_avg = RoIAlignFunction.apply(feat, rois, (7, 7), 0.25, 0, "avg", True)
    want_max = RoIAlignFunction.apply(feat, rois, (7, 7), 0.25, 0, "max", True)
    saved = module.roi_align
    try:
        fast_roi_align.install()
        fast_roi_align.install()                                       # idempotent
        assert fast_roi_align.installed() and module.roi_align.original is saved
        assert torch.equal(RoIAlign((7, 7), 0.25, 0)(feat, rois), want_avg)
        assert torch.equal(RoIAlign((7, 7), 0.25, 0, pool_mode="max")(feat, rois), want_max)
        calls = []
        module.roi_align.original = lambda *a: calls.append(a[5]) or want_max     # spy on the fallback
        RoIAlign((7, 7), 0.25, 0, pool_mode="max")(feat, rois)
        RoIAlign((7, 7), 0.25, 0)(feat.double(), rois.double())
        RoIAlign((7, 7), 0.25, 0)(feat, rois)
        assert calls == ["max", "avg"]     # max pooling and the float64 input go to mmcv; float32 avg does not
    finally:
        module.roi_align = saved
    assert not fast_roi_align.installed()


def test_mmdets_roi_extractor_gives_the_same_features_and_gradients():
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

    module = fast_roi_align.mmcv_module()
    g = torch.Generator().manual_seed(4)
    feats = [torch.randn(2, 8, 64 // s, 64 // s, generator=g) for s in (1, 2, 4, 8)]
    rois = _rois(g, 60, 2, 256)
    ext = SingleRoIExtractor(roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0), out_channels=8,
                             featmap_strides=[4, 8, 16, 32])
    saved = module.roi_align
    results = []
    try:
        for patched in (False, True):
            if patched:
                fast_roi_align.install()
            xs = [f.clone().requires_grad_(True) for f in feats]
            out = ext(xs, rois)
            out.square().sum().backward()
            results.append((out.detach(), [x.grad for x in xs]))
    finally:
        module.roi_align = saved
    (a, ga), (b, gb) = results
    assert torch.equal(a, b)
    assert all(torch.equal(x, y) for x, y in zip(ga, gb))
