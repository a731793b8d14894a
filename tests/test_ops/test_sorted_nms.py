"""sorted_nms against mmcv's NMS (the oracle), on CPU and CUDA."""
import pytest
import torch
from mmcv.ops import nms

from rfcn_mm.ops import sorted_nms


def random_boxes(num, seed, size=200.0, device='cpu'):
    """Clustered boxes, so that many pairs overlap near any threshold."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(max(num // 8, 1), 2, generator=g) * size
    pick = torch.randint(len(centres), (num, ), generator=g)
    xy = centres[pick] + torch.randn(num, 2, generator=g) * 6
    wh = 4 + torch.rand(num, 2, generator=g) * 40
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
    scores = torch.rand(num, generator=g)
    return boxes.to(device), scores.to(device)


def mmcv_keep(boxes, scores, valid, thr, max_num):
    """Oracle: mmcv's NMS of the valid boxes, as positions in the score
    order, truncated to max_num."""
    order = scores.sort(descending=True, stable=True)[1]
    pos = torch.arange(len(scores), device=boxes.device)
    sel = valid[order]
    if not bool(sel.any()):
        return pos[:0]
    _, keep = nms(boxes[order][sel], scores[order][sel], thr)
    return pos[sel][keep][:max_num]


def run_sorted(boxes, scores, valid, thr, max_num):
    order = scores.sort(descending=True, stable=True)[1]
    keep = sorted_nms(boxes[order][None], valid[order][None], thr, max_num)
    assert keep.shape == (1, max_num) and keep.dtype == torch.int64
    keep = keep[0]
    n = int((keep >= 0).sum())
    assert bool((keep[n:] == -1).all())  # padding only at the end
    return keep[:n]


@pytest.mark.parametrize('num', [1, 2, 63, 64, 65, 130, 700])
@pytest.mark.parametrize('thr', [0.3, 0.7])
def test_matches_mmcv_nms(num, thr):
    boxes, scores = random_boxes(num, seed=num)
    valid = torch.ones(num, dtype=torch.bool)
    for max_num in (1, 5, num + 3):
        want = mmcv_keep(boxes, scores, valid, thr, max_num)
        got = run_sorted(boxes, scores, valid, thr, max_num)
        assert torch.equal(got, want)


def test_invalid_boxes_are_neither_kept_nor_suppress():
    # hand-made: IoU(A, B) = IoU(B, C) = 90 / 110, IoU(A, C) = 80 / 120;
    # scores A > B > C
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 0., 11., 10.],
                          [2., 0., 12., 10.]])[None]
    every = torch.ones(1, 3, dtype=torch.bool)
    assert sorted_nms(boxes, every, 0.7, 3).tolist() == [[0, 2, -1]]
    no_a = torch.tensor([[False, True, True]])
    assert sorted_nms(boxes, no_a, 0.7, 3).tolist() == [[1, -1, -1]]
    assert sorted_nms(boxes, every, 0.9, 2).tolist() == [[0, 1]]


def test_batches_images_independently():
    per_image = [random_boxes(n, seed=10 + n) for n in (90, 90, 90)]
    boxes = torch.stack([b for b, _ in per_image])
    scores = torch.stack([s for _, s in per_image])
    valid = torch.rand(3, 90, generator=torch.Generator().manual_seed(1)) > .3
    valid[2] = False  # an image with nothing valid keeps nothing
    order = scores.sort(dim=1, descending=True, stable=True)[1]
    keep = sorted_nms(
        boxes.gather(1, order[..., None].expand(-1, -1, 4)),
        valid.gather(1, order), 0.5, 40)
    for i in range(3):
        want = mmcv_keep(boxes[i], scores[i], valid[i], 0.5, 40)
        got = keep[i][keep[i] >= 0]
        assert torch.equal(got, want)
    assert bool((keep[2] == -1).all())


def test_no_boxes():
    keep = sorted_nms(
        torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool), 0.5, 4)
    assert keep.tolist() == [[-1] * 4] * 2


def test_non_finite_boxes_stay_in_bounds():
    """NaN or infinite boxes suppress nothing and are suppressed by
    nothing (their IoU is NaN), and every index stays in range."""
    boxes = torch.tensor([[[0., 0, 10, 10], [float('nan'), 0, 10, 10],
                           [1, 1, 10, 10], [0, 0, float('inf'), 10],
                           [-float('inf'), 0, 5, 5]]])
    keep = sorted_nms(boxes, torch.ones(1, 5, dtype=torch.bool), 0.5, 5)
    kept = [i for i in keep[0].tolist() if i >= 0]
    assert all(0 <= i < 5 for i in kept)
    assert 0 in kept and 2 not in kept  # the finite pair still suppresses


@pytest.mark.parametrize('args, error, match', [
    ((torch.zeros(5, 4), torch.ones(5, dtype=torch.bool), 0.5, 2), ValueError,
     r'boxes must be shaped \(N, M, 4\)'),
    ((torch.zeros(1, 5, 4, dtype=torch.float64),
      torch.ones(1, 5, dtype=torch.bool), 0.5, 2), TypeError, 'float32'),
    ((torch.zeros(1, 5, 4), torch.ones(1, 4, dtype=torch.bool), 0.5, 2),
     ValueError, r'valid must be shaped \(N, M\) = \(1, 5\)'),
    ((torch.zeros(1, 5, 4), torch.ones(
        1, 5), 0.5, 2), TypeError, 'valid must be a bool tensor'),
    ((torch.zeros(1, 5, 4), torch.ones(1, 5, dtype=torch.bool), 0.5, 0),
     ValueError, 'max_num must be a positive int'),
    ((torch.zeros(1, 5, 4), torch.ones(1, 5, dtype=torch.bool),
      float('nan'), 2), ValueError, r'iou_threshold must be a number in'),
    ((torch.zeros(1, 5, 4), torch.ones(1, 5, dtype=torch.bool), 1.5, 2),
     ValueError, r'iou_threshold must be a number in \[0, 1\]'),
])
def test_bad_arguments_are_named(args, error, match):
    with pytest.raises(error, match=match):
        sorted_nms(*args)


@pytest.mark.cuda
@pytest.mark.parametrize('num', [1, 64, 65, 700, 6000])
def test_cuda_matches_cpu_and_mmcv(num):
    boxes, scores = random_boxes(num, seed=num, size=600.0)
    valid = torch.rand(num, generator=torch.Generator().manual_seed(2)) > .1
    for thr, max_num in ((0.7, 300), (0.3, 100), (0.5, num)):
        cpu = run_sorted(boxes, scores, valid, thr, max_num)
        cuda = run_sorted(boxes.cuda(), scores.cuda(), valid.cuda(), thr,
                          max_num)
        want = mmcv_keep(boxes.cuda(), scores.cuda(), valid.cuda(), thr,
                         max_num)
        assert torch.equal(cuda, want)
        assert torch.equal(cuda.cpu(), cpu)


@pytest.mark.cuda
@pytest.mark.parametrize('num', [65, 6000])
@pytest.mark.parametrize('max_num', [1, 63, 64, 65, 300, 2000])
def test_cuda_batched_matches_cpu(num, max_num):
    """Several images at once (one all invalid), cut anywhere in a word."""
    per_image = [random_boxes(num, seed=20 + i, size=600.) for i in range(3)]
    order = [s.sort(descending=True, stable=True)[1] for _, s in per_image]
    boxes = torch.stack([b[o] for (b, _), o in zip(per_image, order)])
    valid = torch.rand(3, num, generator=torch.Generator().manual_seed(4)) > .1
    valid[1] = False
    for thr in (0.3, 0.7):
        cpu = sorted_nms(boxes, valid, thr, max_num)
        cuda = sorted_nms(boxes.cuda(), valid.cuda(), thr, max_num)
        assert torch.equal(cuda.cpu(), cpu)


@pytest.mark.cuda
def test_cuda_graph_capture():
    boxes, scores = random_boxes(500, seed=3, device='cuda')
    order = scores.sort(descending=True)[1]
    static = boxes[order][None].clone()
    valid = torch.ones(1, 500, dtype=torch.bool, device='cuda')
    want = sorted_nms(static, valid, 0.5, 50)
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        sorted_nms(static, valid, 0.5, 50)  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(side)
    with torch.cuda.graph(graph):
        out = sorted_nms(static, valid, 0.5, 50)
    graph.replay()
    assert torch.equal(out, want)
    static.copy_(boxes[order.flip(0)][None])  # other data, same graph
    graph.replay()
    assert torch.equal(out, sorted_nms(static, valid, 0.5, 50))
