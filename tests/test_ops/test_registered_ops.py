"""The ops as registered operators (torch.ops.rfcn_mm): torch.library's
opcheck over the RoI cases, the fake kernels' argument checks against the
C++ kernels', torch.compile and torch.export."""
import pytest
import torch
from helpers.roi_cases import make_rois, refusals_in_child
from torch.library import opcheck

from rfcn_mm.ops import ps_roi_align, ps_roi_pool, sorted_nms

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)]


def pool_args(dtype, device, k=3, batch=2, num=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 2 * k * k, 9, 11, generator=g, dtype=dtype)
    rois = make_rois(batch, 9, 11, 0.5, num=num, seed=seed, dtype=dtype)
    return x.to(device).requires_grad_(), rois.to(device)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('k', [1, 3])
def test_opcheck_ps_roi_pool(device, dtype, k):
    # make_rois: borders, partly and wholly outside, degenerate, tiny
    x, rois = pool_args(dtype, device, k)
    opcheck(torch.ops.rfcn_mm.ps_roi_pool.default, (x, rois, k, k, 0.5))
    opcheck(torch.ops.rfcn_mm.ps_roi_pool.default,
            (x, rois[:0], k, k, 0.5))  # no RoI
    # the reference's coordinates
    opcheck(torch.ops.rfcn_mm.ps_roi_pool.default,
            (x, rois, k, k, 0.5, True))


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('sampling_ratio, aligned', [(2, True), (0, True),
                                                     (1, False)])
def test_opcheck_ps_roi_align(device, dtype, sampling_ratio, aligned):
    x, rois = pool_args(dtype, device)
    args = (x, rois, 3, 3, 0.5, sampling_ratio, aligned)
    opcheck(torch.ops.rfcn_mm.ps_roi_align.default, args)
    opcheck(torch.ops.rfcn_mm.ps_roi_align.default, (x, rois[:0], *args[2:]))


@pytest.mark.parametrize('device', DEVICES)
def test_opcheck_backward_ops(device):
    x, rois = pool_args(torch.float64, device)
    grad = torch.randn(
        rois.size(0), 2, 3, 3, dtype=torch.float64, device=device)
    opcheck(torch.ops.rfcn_mm._ps_roi_pool_backward.default,
            (grad, rois, *x.shape, 3, 3, 0.5))
    opcheck(torch.ops.rfcn_mm._ps_roi_align_backward.default,
            (grad, rois, *x.shape, 3, 3, 0.5, 2, True))


@pytest.mark.parametrize('device', DEVICES)
def test_opcheck_sorted_nms(device):
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(3, 40, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(3, 40, 2, generator=g) * 20],
                      -1).to(device)
    valid = (torch.rand(3, 40, generator=g) > 0.2).to(device)
    for max_num in (1, 10, 60):
        opcheck(torch.ops.rfcn_mm.sorted_nms.default,
                (boxes, valid, 0.5, max_num))


def bad_calls():
    """(name, op, args) that the checks must refuse: each is made with real
    tensors and, in the child, with fake ones."""
    x = torch.randn(2, 27, 10, 13)
    rois = make_rois(2, 10, 13, 0.5, num=6, dtype=torch.float32)
    pool = 'ps_roi_pool'
    align = 'ps_roi_align'
    boxes, valid = torch.zeros(1, 5, 4), torch.ones(1, 5, dtype=torch.bool)
    return [
        ('channels', pool, (x, rois, 2, 2, 0.5)),
        ('rois shape', pool, (x, rois[:, :4], 3, 3, 0.5)),
        ('4-D', pool, (x[0], rois, 3, 3, 0.5)),
        ('dtype', pool, (x, rois.double(), 3, 3, 0.5)),
        ('integer', pool, (x.long(), rois, 3, 3, 0.5)),
        ('output size', pool, (x, rois, 0, 3, 0.5)),
        ('scale', pool, (x, rois, 3, 3, 0.)),
        ('inf scale', align, (x, rois, 3, 3, float('inf'), 2, True)),
        ('sampling', align, (x, rois, 3, 3, 0.5, -1, True)),
        ('many samples', align, (x, rois, 3, 3, 0.5, 65, True)),
        ('many samples', 'deform_ps_roi_pool',
         (x, rois, None, 3, 3, 0.5, 3, 3, 65, 0.1, False)),
        ('no samples', 'deform_ps_roi_pool',
         (x, rois, None, 3, 3, 0.5, 3, 3, 0, 0.1, False)),
        ('channels', align, (x, rois, 2, 2, 0.5, 2, True)),
        ('grad shape', '_ps_roi_pool_backward', (torch.zeros(6, 3, 3, 2), rois,
                                                 2, 27, 10, 13, 3, 3, 0.5)),
        ('grad shape', '_ps_roi_align_backward',
         (torch.zeros(5, 3, 3, 3), rois, 2, 27, 10, 13, 3, 3, 0.5, 2, True)),
        ('boxes shape', 'sorted_nms', (boxes[0], valid, 0.5, 2)),
        ('boxes dtype', 'sorted_nms', (boxes.double(), valid, 0.5, 2)),
        ('valid shape', 'sorted_nms', (boxes, valid[:, :4], 0.5, 2)),
        ('valid dtype', 'sorted_nms', (boxes, valid.float(), 0.5, 2)),
        ('max_num', 'sorted_nms', (boxes, valid, 0.5, 0)),
        ('threshold', 'sorted_nms', (boxes, valid, 1.5, 2)),
        ('nan threshold', 'sorted_nms', (boxes, valid, float('nan'), 2)),
    ]


def test_fake_kernels_refuse_what_the_kernels_refuse_with_their_words():
    """Each bad call, to the C++ kernel (real tensors) and to the fake
    kernel (FakeTensorMode, as torch.compile and torch.export trace), must
    raise the same exception type with the same message. In a child
    process: see refusals_in_child."""
    lines = refusals_in_child(
        'from torch._subclasses.fake_tensor import FakeTensorMode\n'
        'from test_registered_ops import bad_calls\n'
        'import rfcn_mm.ops  # noqa: F401\n'
        'def attempt(fn):\n'
        '    try:\n'
        '        fn()\n'
        '    except Exception as e:\n'
        '        return f"{type(e).__name__}: {str(e).splitlines()[0]}"\n'
        '    return "accepted"\n'
        'for name, op, args in bad_calls():\n'
        '    fn = getattr(torch.ops.rfcn_mm, op)\n'
        '    real = attempt(lambda: fn(*args))\n'
        '    with FakeTensorMode(allow_non_fake_inputs=True) as mode:\n'
        '        fakes = [mode.from_tensor(a) if isinstance(a, torch.Tensor)\n'
        '                 else a for a in args]\n'
        '        fake = attempt(lambda: fn(*fakes))\n'
        '    print(op, name, "|", real, "|", fake)\n')
    assert len(lines) == len(bad_calls())
    for line in lines:
        op, real, fake = line.split(' | ')
        assert real != 'accepted' and real.split(':')[0] in ('ValueError',
                                                             'TypeError'), line
        assert real == fake, line


def test_functional_ops_raise_the_kernels_messages():
    x = torch.randn(2, 27, 10, 13)
    rois = make_rois(2, 10, 13, 0.5, num=6, dtype=torch.float32)
    with pytest.raises(TypeError) as err:
        ps_roi_pool(x.long(), rois, 3, 0.5)
    assert str(err.value) == ('ps_roi_pool: input must be a floating point '
                              'tensor, got Long')
    with pytest.raises(ValueError) as err:
        ps_roi_align(x, rois[:, :4], 3, 0.5)
    assert str(err.value) == (
        'ps_roi_align: rois must be shaped (N, 5) as (batch_index, x1, y1, '
        'x2, y2), got shape [6, 4]')


@pytest.mark.parametrize('op', ['pool', 'align'])
def test_compile_fullgraph_forward_and_backward(op):
    x, rois = pool_args(torch.float32, 'cpu')
    fn = {
        'pool': lambda x, r: ps_roi_pool(x, r, 3, 0.5, check_batch_idx=False),
        'align':
        lambda x, r: ps_roi_align(x, r, 3, 0.5, 0, check_batch_idx=False),
    }[op]

    def loss(x, r):
        return (fn(x, r) * torch.arange(2.).view(1, 2, 1, 1)).sum()

    want = torch.autograd.grad(loss(x, rois), x)[0]
    compiled = torch.compile(loss, fullgraph=True, backend='aot_eager')
    got = torch.autograd.grad(compiled(x, rois), x)[0]
    torch.testing.assert_close(got, want)


def test_export_captures_each_op_as_one_node():

    class Net(torch.nn.Module):

        def forward(self, x, rois, boxes, valid):
            a = ps_roi_pool(x, rois, 3, 0.5, check_batch_idx=False)
            b = ps_roi_align(x, rois, 3, 0.5, 2, check_batch_idx=False)
            return a + b, sorted_nms(boxes, valid, 0.5, 4)

    x, rois = pool_args(torch.float32, 'cpu')
    boxes = torch.tensor([[[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    args = (x.detach(), rois, boxes, valid)
    program = torch.export.export(Net(), args)
    targets = [
        str(n.target) for n in program.graph.nodes if n.op == 'call_function'
    ]
    for name in ('rfcn_mm.ps_roi_pool.default', 'rfcn_mm.ps_roi_align.default',
                 'rfcn_mm.sorted_nms.default'):
        assert targets.count(name) == 1, targets
    got, want = program.module()(*args), Net()(*args)
    torch.testing.assert_close(got[0], want[0])
    assert torch.equal(got[1],
                       want[1]) and got[1][0].tolist() == [0, 2, -1, -1]
