import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from rfcn_mm.utils import OpCensus, is_host_sync

aten = torch.ops.aten


def test_counts_every_op_once():
    a, b = torch.rand(3), torch.rand(3)
    with OpCensus() as census:
        (a + b).sum()  # add, sum
        a.mul_(2)  # mul_
    assert census.num_ops == 3 and census.host_syncs == []


def test_counts_the_backward_run_inside():
    w = torch.rand(4, requires_grad=True)
    x = torch.rand(4)
    with OpCensus() as forward_only:
        (w * x).sum()
    with OpCensus() as both:
        (w * x).sum().backward()
    assert forward_only.num_ops == 2
    # the backward of sum expands the output gradient and that of mul
    # multiplies it by x: more ops than the forward
    assert both.num_ops > forward_only.num_ops + 1
    assert torch.equal(w.grad, x)


def test_records_ops_that_wait_for_the_host():
    x = torch.tensor([0., 2., 0., 3.])
    with OpCensus() as census:
        x.nonzero()
        x[x > 0]  # boolean mask: a data-dependent shape
        x.sum().item()
        torch.tensor([1., 2.])  # host data: a copy from the host
    names = census.host_syncs
    assert len(names) == 4, names
    assert 'nonzero' in names[0] and 'index' in names[1]
    assert '_local_scalar_dense' in names[2] and 'lift_fresh' in names[3]


def test_records_other_data_dependent_shapes_and_values():
    x = torch.tensor([0, 2, 0, 3])
    for op in (lambda: x.unique(), lambda: x.unique_consecutive(),
               lambda: x.bincount(), lambda: torch.equal(x, x),
               lambda: x.repeat_interleave(x), lambda: bool(x[1]),
               lambda: x.masked_select(x > 0)):
        with OpCensus() as census:
            op()
        assert census.host_syncs, op


def test_does_not_record_ops_with_fixed_shapes():
    x, idx = torch.rand(5), torch.tensor([0, 3])
    with OpCensus() as census:
        x[idx]  # integer indices: shape known
        x.masked_fill(x > 0.5, 0.)
        x.topk(2)
        torch.where(x > 0.5, x, 0.)
        torch.nonzero_static(x > 0.5, size=5)
        idx.repeat_interleave(idx, output_size=3)
        x.repeat_interleave(2)
    assert census.num_ops >= 8 and census.host_syncs == []


@pytest.mark.parametrize(
    'op, args, kwargs, expected',
    [
        (aten._to_copy.default, ('gpu', ), dict(device='cpu'), True),
        (aten._to_copy.default, ('host', ), dict(device='cuda'), True),
        (aten._to_copy.default,
         ('host', ), dict(device='cuda', non_blocking=True), False),
        (aten._to_copy.default, ('gpu', ), dict(dtype=torch.half), False),
        (aten._to_copy.default, ('host', ), dict(device='cpu'), False),
        (aten.copy_.default, ('host', 'gpu'), {}, True),  # to the host
        (aten.copy_.default, ('host', 'gpu', True), {}, True),
        (aten.copy_.default, ('gpu', 'host'), {}, True),  # blocking
        (aten.copy_.default, ('gpu', 'host', True), {}, False),
        (aten.copy_.default, ('gpu', 'host'), dict(non_blocking=True), False),
        (aten.copy_.default, ('gpu', 'gpu'), {}, False),
    ])
def test_which_copies_make_the_host_wait(op, args, kwargs, expected):
    """The decision for copies between host and GPU, on fake CUDA tensors
    (no GPU needed); the test below checks it on real ones."""
    with FakeTensorMode():
        gpu = torch.empty(4, device='cuda')
    tensors = dict(gpu=gpu, host=torch.empty(4))
    args = tuple(tensors.get(a, a) if isinstance(a, str) else a for a in args)
    assert is_host_sync(op, args, kwargs) is expected


@pytest.mark.cuda
def test_records_blocking_copies_between_host_and_gpu():
    x, host = torch.rand(4, device='cuda'), torch.empty(4)
    pinned = torch.rand(4).pin_memory()
    for blocking in (x.cpu, x.tolist, lambda: host.copy_(x), host.cuda,
                     lambda: x.copy_(host)):
        with OpCensus() as census:
            blocking()
        assert census.host_syncs, blocking
    for free in (x.cuda, lambda: x + 1,
                 lambda: pinned.to('cuda', non_blocking=True),
                 lambda: x.copy_(pinned, non_blocking=True)):
        with OpCensus() as census:
            free()
        assert census.host_syncs == [], free
