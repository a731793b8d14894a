"""Time rfcn_mm's ops against their baselines in the same run.

    python tools/analysis_tools/benchmark_ops.py [--device cuda] \
        [--out bench_ops.md]

PS RoI pooling and align against torchvision's: a 38x63 map (600x1000 image
at stride 16), k in {3, 7}, class maps for 21 and 81 classes plus 4k^2 box
maps, 300 and 2000 RoIs. ``sorted_nms`` against mmcv's ``nms`` (what mmdet's
RPN runs): the RPN's case, the 6000 best of the 38x63x9 anchors of that
map, IoU 0.7, 300 and 2000 kept. Deformable PS RoI pooling (4 x 4 samples
per bin, offsets for the gradient too) against plain PS RoI pooling and
PS RoI Align on the same maps, k = 7, 21 classes, class-specific offsets.
Prints tables of times and ratios (baseline time / ours: > 1 means ours is
faster; for the deformable op, its time over the plain ops'). Absolute
times are only meaningful on a GPU.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
import rfcn_mm  # noqa: E402,F401
from rfcn_mm.ops import (deform_ps_roi_pool, ps_roi_align,  # noqa: E402
                         ps_roi_pool, sorted_nms)
from rfcn_mm.utils import atomic_write  # noqa: E402


def torchvision_ops():
    try:
        import torchvision.ops
        return torchvision.ops
    except Exception:  # missing or broken (e.g. next to a CPU torch wheel)
        return None


def make_inputs(k, classes, num_rois, device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = k * k * (classes + 4)
    x = torch.randn(1, channels, 38, 63, generator=g).to(device, dtype)
    ctr = torch.rand(num_rois, 2, generator=g) * torch.tensor([1000., 600.])
    size = torch.exp(torch.empty(num_rois, 2).uniform_(3, 6.3, generator=g))
    boxes = torch.cat([ctr - size / 2, ctr + size / 2], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, 1000)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, 600)
    rois = torch.cat([torch.zeros(num_rois, 1), boxes], 1).to(device, dtype)
    return x, rois


REPS = 30


def _time_once(fn, device):
    if device == 'cuda':
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def timeit(fns, device, warmup=5, reps=None):
    """Median ms of each function; the functions take turns, rep by rep, so
    that clock changes and other load hit all of them alike."""
    reps = reps or REPS
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for fn, t in zip(fns, times):
            t.append(_time_once(fn, device))
    return [statistics.median(t) for t in times]


def step_fn(fn, x, rois, k, backward):
    if not backward:
        return lambda: fn(x, rois, k)
    xg = x.detach().requires_grad_(True)

    def step():
        out = fn(xg, rois, k)
        out.backward(torch.ones_like(out))
        xg.grad = None

    return step


def rpn_boxes(device, num=6000, seed=0):
    """The ``num`` best-scoring of the 38x63 x 9 anchors (stride 16, scales
    8/16/32, ratios 0.5/1/2) of a 600x1000 image, slightly moved, clipped
    to the image and sorted by their random scores, as an RPN's NMS gets
    them."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(
        torch.arange(38.) * 16 + 8, torch.arange(63.) * 16 + 8, indexing='ij')
    ctr = torch.stack([xs, ys], -1).reshape(-1, 1, 2)
    sizes = torch.tensor([[128. * s * r**-0.5, 128. * s * r**0.5]
                          for s in (0.5, 1., 2.) for r in (0.5, 1., 2.)])
    ctr = (ctr + torch.randn(len(ctr), 9, 2, generator=g) * 4).reshape(-1, 2)
    wh = sizes.repeat(38 * 63, 1) * torch.exp(
        torch.randn(len(ctr), 2, generator=g) * 0.1)
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, 1000)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, 600)
    scores, order = torch.rand(len(boxes), generator=g).topk(num)
    return boxes[order].to(device), scores.to(device)


def nms_rows(device):
    """Table rows: sorted_nms against mmcv's nms (one image)."""
    from mmcv.ops import nms
    boxes, scores = rpn_boxes(device)
    valid = torch.ones(1, len(boxes), dtype=torch.bool, device=boxes.device)
    rows = []
    for max_num in (300, 2000):

        def ours():
            return sorted_nms(boxes[None], valid, 0.7, max_num)

        def mmcv():
            return nms(boxes, scores, 0.7)[1][:max_num]

        kept = int((ours() >= 0).sum())
        t_ours, t_mmcv = timeit([ours, mmcv], device)
        rows.append(f'| {len(boxes)} | 0.7 | {max_num} | {kept} | '
                    f'{t_ours:.3f} | {t_mmcv:.3f} | {t_mmcv / t_ours:.2f}x |')
        print(rows[-1], flush=True)
    return rows


def deform_rows(device, dtype, check):
    """Deformable against plain pooling: what the deformable head costs
    per pooling call (its offsets' own no-offset pooling not included)."""
    rows = []
    k, classes = 7, 21
    for num_rois in (300, 2000):
        x, rois = make_inputs(k, classes, num_rois, device, dtype)
        g = torch.Generator().manual_seed(1)
        off = (torch.randn(num_rois, 2 * (classes + 4), k, k, generator=g) *
               0.1).to(device, dtype)
        for backward in (False, True):
            offg = off.detach().requires_grad_(backward)

            def deform(x, r, k, offg=offg):
                return deform_ps_roi_pool(
                    x, r, offg, k, 1 / 16, sample_per_part=4,
                    check_batch_idx=check)

            fns = [
                step_fn(deform, x, rois, k, backward),
                step_fn(lambda x, r, k: ps_roi_pool(x, r, k, 1 / 16, check),
                        x, rois, k, backward),
                step_fn(
                    lambda x, r, k: ps_roi_align(x, r, k, 1 / 16, 2, True,
                                                 check), x, rois, k,
                    backward)
            ]
            t_def, t_pool, t_align = timeit(fns, device)
            rows.append(f'| {num_rois} | {"fwd+bwd" if backward else "fwd"} '
                        f'| {t_def:.3f} | {t_pool:.3f} | {t_align:.3f} | '
                        f'{t_def / t_pool:.2f}x | {t_def / t_align:.2f}x |')
            print(rows[-1], flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--dtype',
        default='float32',
        choices=['float32', 'float16', 'bfloat16'])
    parser.add_argument(
        '--reps',
        type=int,
        default=50,
        help='timed repetitions of each op, taking turns (median reported)')
    parser.add_argument(
        '--check-batch-idx',
        action='store_true',
        help='time rfcn_mm with its host-side batch index check (one '
        'synchronisation per call on CUDA); by default it is off, as in '
        'the detector, and torchvision has none')
    parser.add_argument('--out', help='also write the table here')
    args = parser.parse_args()
    check = args.check_batch_idx
    global REPS
    REPS = args.reps
    dtype = getattr(torch, args.dtype)
    tv = torchvision_ops()
    ours = {
        'pool': lambda x, r, k: ps_roi_pool(x, r, k, 1 / 16, check),
        'align': lambda x, r, k: ps_roi_align(x, r, k, 1 / 16, 2, True, check),
    }
    theirs = {}
    if tv is not None:
        theirs = {
            'pool': lambda x, r, k: tv.ps_roi_pool(x, r, k, 1 / 16),
            'align': lambda x, r, k: tv.ps_roi_align(x, r, k, 1 / 16, 2),
        }
    rows = []
    header = ('| mode | k | classes | RoIs | pass | rfcn_mm ms | '
              'torchvision ms | torchvision / rfcn_mm |')
    rows.append(header)
    rows.append('|' + '---|' * 8)
    for mode in ('pool', 'align'):
        for k in (3, 7):
            for classes in (21, 81):
                for num_rois in (300, 2000):
                    x, rois = make_inputs(k, classes, num_rois, args.device,
                                          dtype)
                    for backward in (False, True):
                        fns = [step_fn(ours[mode], x, rois, k, backward)]
                        if mode in theirs:
                            fns.append(
                                step_fn(theirs[mode], x, rois, k, backward))
                        t_ours, t_tv = (timeit(fns, args.device) + [None])[:2]
                        ratio = f'{t_tv / t_ours:.2f}x' if t_tv else 'n/a'
                        tv_ms = f'{t_tv:.3f}' if t_tv else 'n/a'
                        rows.append(
                            f'| {mode} | {k} | {classes} | {num_rois} | '
                            f'{"fwd+bwd" if backward else "fwd"} | '
                            f'{t_ours:.3f} | {tv_ms} | {ratio} |')
                        print(rows[-1], flush=True)
    device = (torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU')
    title = (f'PS RoI ops, {device}, {args.dtype}, 38x63 map, batch index '
             f'check {"on" if check else "off"}')
    table = '\n'.join([title, ''] + rows)
    if tv is None:
        table += '\n\ntorchvision does not import here: no baseline.'
    nms_table = [
        '| boxes | IoU | max kept | kept | sorted_nms ms | mmcv nms ms | '
        'mmcv / sorted_nms |', '|' + '---|' * 7
    ] + nms_rows(args.device)
    table += '\n\n' + '\n'.join(
        [f'NMS of the RPN\'s boxes, {device}, float32', ''] + nms_table)
    deform_table = [
        '| RoIs | pass | deformable ms | PS pool ms | PS align ms | '
        'deformable / pool | deformable / align |', '|' + '---|' * 7
    ] + deform_rows(args.device, dtype, check)
    table += '\n\n' + '\n'.join([
        f'Deformable PS RoI pooling (k = 7, 21 classes, 4 x 4 samples, '
        f'offsets), {device}, {args.dtype}', ''
    ] + deform_table)
    print('\n' + table)
    if args.out:
        atomic_write(table + '\n', args.out)


if __name__ == '__main__':
    main()
