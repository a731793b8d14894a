"""Time R-FCN against mmdet's Faster R-CNN R-101-C4 in the same run.

    python tools/analysis_tools/benchmark_detector.py [--device cuda] \
        [--out bench.md]

Inference: ms/img at 600x1000, batch 1, random weights, 300 RoIs, for
R-FCN R-101 k=7 and mmdet's ``faster-rcnn_r50-caffe-c4`` config at depth
101: float32 as built, then BatchNorm folded + channels_last +
cudnn.benchmark in float32 and in bfloat16 (R-FCN through
``FastRFCN.optimize_for_inference``: fixed-shape proposals and
post-processing, all of inference one CUDA graph on a GPU; C4 with mmcv's
``fuse_conv_bn`` and bfloat16 autocast). Training: ms/iter with OHEM
mining from 300 and from 2000 proposals (R-FCN with its
RFCNOHEMSampler, C4 with mmdet's OHEMSampler), in float32 and under
bfloat16 autocast with channels_last; R-FCN with mmdet's target and loss
code, with ``train_cfg.fixed_shape=True`` (no host synchronisation, every
shape fixed, so with cudnn.benchmark on), and with ``cuda_graph=True`` too
(forward and backward replayed as one CUDA graph).
Prints a table with the C4/R-FCN ratios. Absolute times only mean something
on a GPU. ``--profile FILE`` writes torch.profiler tables of R-FCN's
inference and training steps instead. ``--work`` counts instead of timing:
floating-point operations, aten ops dispatched and host synchronisations
of each step, the same on every device (so meaningful on a CPU too).
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import time
from contextlib import nullcontext

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
import rfcn_mm  # noqa: E402,F401
from rfcn_mm.utils import atomic_write  # noqa: E402

RFCN_CFG = osp.join(ROOT, 'configs', 'rfcn', 'rfcn_r101_voc0712.py')
C4_CFG = ('faster_rcnn', 'faster-rcnn_r50-caffe-c4_ms-1x_coco.py')  # mmdet's


def strip_pretrained(node):
    if isinstance(node, dict):
        if isinstance(node.get('init_cfg'), dict) and \
                node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None
        for v in node.values():
            strip_pretrained(v)
    elif isinstance(node, list):
        for v in node:
            strip_pretrained(v)


def build(name, num_proposals, device, fixed_shape=False):
    import logging

    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.utils import get_installed_path
    register_all_modules()
    # no per-parameter init report
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    cfg = Config.fromfile(RFCN_CFG if name == 'rfcn' else osp.join(
        get_installed_path('mmdet'), '.mim', 'configs', *C4_CFG))
    model_cfg = copy.deepcopy(cfg.model)
    if name == 'c4':
        model_cfg.backbone.depth = 101
        model_cfg.roi_head.shared_head.depth = 101
        model_cfg.roi_head.bbox_head.num_classes = 20
        model_cfg.test_cfg.rpn.update(nms_pre=6000, max_per_img=300)
        model_cfg.train_cfg.rcnn.sampler = dict(
            type='OHEMSampler',
            num=128,
            pos_fraction=0.25,
            neg_pos_ub=-1,
            add_gt_as_proposals=True)
        model_cfg.train_cfg.rpn_proposal.update(nms_pre=6000)
    model_cfg.train_cfg.rpn_proposal.max_per_img = num_proposals
    if name == 'rfcn':
        # RFCN's network with the fast layer's options (rfcn_mm.fast)
        model_cfg.type = 'FastRFCN'
    if fixed_shape:
        model_cfg.train_cfg.fixed_shape = True
    strip_pretrained(model_cfg)
    # the same random weights in every run and on every device (drawn on
    # the CPU): they decide how many of the RPN's boxes survive its NMS, so
    # how many RoIs the heads see
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.to(device)


def batch(device, train):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    inputs = (torch.rand(1, 3, 608, 1008, generator=g) * 255).to(device)
    ds = DetDataSample(
        metainfo=dict(
            img_shape=(600, 1000),
            ori_shape=(600, 1000),
            scale_factor=(1., 1.),
            pad_shape=(608, 1008),
            batch_input_shape=(608, 1008)))
    if train:
        xy = torch.rand(4, 2, generator=g) * torch.tensor([700., 400.])
        gt = InstanceData(
            bboxes=torch.cat([xy, xy + 100 + torch.rand(4, 2) * 150], 1),
            labels=torch.randint(0, 20, (4, ), generator=g))
        ds.gt_instances = gt
    return inputs, [ds.to(device)]


def timeit(fn, device, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


class Float32RoILayer(torch.nn.Module):

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.output_size = layer.output_size

    def forward(self, feats, rois):
        return self.layer(feats.float(), rois.float())


def c4_roi_layers_in_float32(model):
    """mmcv's RoIAlign has no bfloat16 kernel: under bfloat16 autocast C4
    pools in float32."""
    layers = model.roi_head.bbox_roi_extractor.roi_layers
    for i, layer in enumerate(layers):
        layers[i] = Float32RoILayer(layer)


def infer_step(name, device, mode, cuda_graph=None):
    """One ``predict`` of a 600x1000 image, in one of four modes.

    ``eager``: float32 as built. ``fused-fp32`` and ``fused-bf16``:
    BatchNorm folded into the convs and channels_last for both detectors;
    R-FCN through ``optimize_for_inference`` (dense stage in that precision,
    all of inference one CUDA graph on a GPU unless ``cuda_graph=False``),
    C4 under bfloat16 autocast for ``fused-bf16``. ``compiled``: float32,
    BatchNorm folded, ``torch.compile`` (Inductor): R-FCN's fixed-shape
    inference with ``fullgraph=True``, C4's ``predict`` as Dynamo splits it
    (mmdet's post-processing has data-dependent shapes). Compilation
    happens in the warm-up runs.
    """
    from mmcv.cnn import fuse_conv_bn
    model = build(name, 300, device).eval()
    inputs, samples = batch(device, train=False)
    ctx = nullcontext()
    torch.backends.cudnn.benchmark = mode != 'eager'
    if mode == 'compiled':
        if name == 'rfcn':
            model.optimize_for_inference(
                dtype='float32', channels_last=False, cuda_graph=False)
            model.fixed_shape_forward = torch.compile(
                model.fixed_shape_forward, fullgraph=True)
        else:
            fuse_conv_bn(model)
            model.predict = torch.compile(model.predict)
    elif mode != 'eager':
        dtype = 'bfloat16' if mode == 'fused-bf16' else 'float32'
        if name == 'rfcn':
            model.optimize_for_inference(dtype=dtype, cuda_graph=cuda_graph)
        else:
            fuse_conv_bn(model)
            model = model.to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            if dtype == 'bfloat16':
                ctx = torch.autocast(device, dtype=torch.bfloat16)
                c4_roi_layers_in_float32(model)

    def step():
        with torch.no_grad(), ctx:
            model.predict(inputs, samples)

    step.model = model
    return step


def infer_ms(name, device, mode, warmup, reps):
    """Median ms/img of ``predict`` in one of the modes of ``infer_step``."""
    return timeit(infer_step(name, device, mode), device, warmup, reps)


def profile_rfcn(device, warmup, out_file):
    """torch.profiler tables of R-FCN inference, eager float32 and the
    bfloat16 fast mode (the detector's stages as rows: eager
    ``rfcn.dense``, ``rfcn.proposals``, ``rfcn.roi_head``; fast mode
    ``rfcn.fixed_shape``), and of its float32 training step from 300
    proposals with mmdet's target code, with the fixed-shape losses and with
    them as CUDA graphs: where the CPU and the GPU spend the time."""
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    runs = [(f'inference, {mode}, 5 images',
             lambda mode=mode: infer_step('rfcn', device, mode))
            for mode in ('eager', 'fused-bf16')]
    runs += [(f'training step fp32, OHEM from 300 proposals, {what}, 5 steps',
              lambda args=args: train_step('rfcn', device, 300, False, *args))
             for what, args in (('mmdet target code', (False, False)),
                                ('fixed-shape losses', (True, False)),
                                ('fixed-shape, CUDA graph', (True, True)))]
    tables = []
    for title, make in runs:
        step = make()
        for _ in range(warmup):
            step()
        with profile(activities=activities) as prof:
            for _ in range(5):
                step()
            if device == 'cuda':
                torch.cuda.synchronize()
        averages = prof.key_averages()
        tables.append(f'## R-FCN {title}\n')
        keys = ['cpu_time_total', 'self_cpu_time_total']
        if device == 'cuda':
            keys.append('self_device_time_total')
        for key in keys:
            tables += [
                f'### sorted by {key}\n', '```',
                averages.table(sort_by=key, row_limit=25), '```\n'
            ]
        print(f'profiled: {title}', flush=True)
    atomic_write('\n'.join(tables), out_file)
    print(f'profile written to {out_file}')


def record_proposals(rpn_head):
    """A list that receives the number of proposals per image that mmdet's
    ``rpn_head.predict_by_feat`` hands to the RoI head (what survives its
    NMS); the fixed-shape code does not call it."""
    counts = []
    predict_by_feat = rpn_head.predict_by_feat

    def recorded(*args, **kwargs):
        results = predict_by_feat(*args, **kwargs)
        counts.extend(len(r) for r in results)
        return results

    rpn_head.predict_by_feat = recorded
    return counts


def work(step):
    """GFLOP (``torch.utils.flop_counter``), aten ops, host
    synchronisations (:class:`rfcn_mm.utils.OpCensus`) and proposals per
    image (None where the fixed-shape code handles every slot) of one call
    of ``step``, after a first call that fills the caches (anchors)."""
    from torch.utils.flop_counter import FlopCounterMode

    from rfcn_mm.utils import OpCensus
    step()
    proposals = record_proposals(step.model.rpn_head)
    flops = FlopCounterMode(display=False)
    with flops, OpCensus() as census:
        step()
    return (flops.get_total_flops() / 1e9, census.num_ops,
            len(census.host_syncs), proposals[0] if proposals else None)


def work_table(device):
    """Markdown table of :func:`work` for each detector's training step from
    300 and 2000 proposals and inference step, with the ratios that bound
    the timed ones: at equal efficiency, R-FCN's time over C4's is its
    GFLOP over C4's."""
    rows = [
        '| step | detector | RoIs from the RPN | GFLOP | aten ops | '
        'host syncs |', '|---|---|---|---|---|---|'
    ]
    c4, rfcn = 'Faster R-CNN C4', 'R-FCN, mmdet target code'
    t300, t2000, infer = ('training, OHEM from 300 proposals',
                          'training, OHEM from 2000 proposals',
                          'inference, eager')
    gflop = {}
    runs = [
        (what, label,
         lambda n=n, name=name, fs=fs: train_step(name, device, n, False, fs))
        for n, what in ((300, t300), (2000, t2000))
        for name, fs, label in (('c4', False, c4), ('rfcn', False, rfcn),
                                ('rfcn', True, 'R-FCN, fixed-shape losses'))
    ]
    # eagerly: a graph replay would hide the ops it launches
    runs += [(f'inference, {mode}', label, lambda name=name, mode=mode:
              infer_step(name, device, mode, cuda_graph=False))
             for mode in ('eager', 'fused-fp32')
             for name, label in (('c4', c4), ('rfcn', 'R-FCN'))]
    for what, label, make in runs:
        g, ops, syncs, rois = work(make())
        gflop[what, label] = g
        rois = 'all slots' if rois is None else rois
        rows.append(
            f'| {what} | {label} | {rois} | {g:.1f} | {ops} | {syncs} |')
        print(rows[-1], flush=True)
    rows += [
        '', f'GFLOP of a training step, R-FCN / C4: '
        f'{gflop[t300, rfcn] / gflop[t300, c4]:.2f} from 300 proposals, '
        f'{gflop[t2000, rfcn] / gflop[t2000, c4]:.2f} from 2000; 2000 / 300: '
        f'R-FCN {gflop[t2000, rfcn] / gflop[t300, rfcn]:.2f}, C4 '
        f'{gflop[t2000, c4] / gflop[t300, c4]:.2f}. Inference, C4 / R-FCN: '
        f'{gflop[infer, c4] / gflop[infer, "R-FCN"]:.2f}.'
    ]
    return rows


def train_ms(name,
             device,
             num_proposals,
             warmup,
             reps,
             amp=False,
             fixed_shape=False,
             graph=False):
    """Median ms of one SGD step of :func:`train_step`."""
    return timeit(
        train_step(name, device, num_proposals, amp, fixed_shape, graph),
        device, warmup, reps)


def train_step(name,
               device,
               num_proposals,
               amp=False,
               fixed_shape=False,
               graph=False):
    """One SGD step (forward, OHEM, backward, update) as a function; with
    ``amp``, under bfloat16 autocast with channels_last (C4's RoIAlign pools
    in float32: mmcv's kernel has no bfloat16); with ``fixed_shape``, R-FCN
    computes its targets and losses with ``train_cfg.fixed_shape=True`` and
    cudnn.benchmark is on; with ``graph`` too, the step is mmengine's
    ``train_step`` with ``train_cfg.cuda_graph=True`` (data preprocessor and
    OptimWrapper included, AmpOptimWrapper for ``amp`` on a GPU)."""
    # off: C4's res5 sees a different number of RoIs at every step (as many
    # proposals as survive NMS), and cudnn.benchmark would re-tune each one;
    # on for the fixed-shape R-FCN step, whose shapes never change
    torch.backends.cudnn.benchmark = fixed_shape
    model = build(name, num_proposals, device, fixed_shape).train()
    inputs, samples = batch(device, train=True)
    ctx = nullcontext()
    if amp:
        ctx = torch.autocast(device, dtype=torch.bfloat16)
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
        if name == 'c4':
            c4_roi_layers_in_float32(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    if graph:
        from mmengine.optim import AmpOptimWrapper, OptimWrapper
        model.train_cfg.cuda_graph = True
        if amp and device == 'cuda':
            ctx, wrapper = nullcontext(), AmpOptimWrapper(
                optimizer=opt, dtype=torch.bfloat16)
        else:
            wrapper = OptimWrapper(opt)
        image = inputs[0, :, :600, :1000].to(torch.uint8)

        def graph_step():
            with ctx:
                model.train_step(
                    dict(inputs=[image], data_samples=samples), wrapper)

        graph_step.model = model
        return graph_step

    def step():
        with ctx:
            losses = model.loss(inputs, samples)
        total = sum(
            sum(v) if isinstance(v, list) else v for k, v in losses.items()
            if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()

    step.model = model
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--reps', type=int, default=30)
    parser.add_argument('--skip-train', action='store_true')
    parser.add_argument(
        '--skip-compile',
        action='store_true',
        help='no torch.compile rows (Inductor compiles for minutes on a '
        'CPU)')
    parser.add_argument('--out', help='also write the table here')
    parser.add_argument(
        '--profile',
        metavar='FILE',
        help='instead of timing, write torch.profiler tables of R-FCN '
        '(inference: float32 and the bfloat16 fast mode; training: mmdet\'s '
        'target code, fixed-shape losses, CUDA graph) to FILE')
    parser.add_argument(
        '--work',
        action='store_true',
        help='instead of timing, count the GFLOP, aten ops and host '
        'synchronisations of each step (device-independent)')
    args = parser.parse_args()
    dev, w, r = args.device, args.warmup, args.reps
    if args.profile:
        return profile_rfcn(dev, w, args.profile)
    if args.work:
        return write_table(args, work_table(dev))
    rows = [
        '| measurement | Faster R-CNN C4 ms | R-FCN ms | C4 / R-FCN |',
        '|---|---|---|---|'
    ]

    def row(what, c4, rfcn):
        rows.append(f'| {what} | {c4:.1f} | {rfcn:.1f} | {c4 / rfcn:.2f}x |')
        print(rows[-1], flush=True)

    infer = {}
    modes = [('eager', 'inference fp32, 300 RoIs'),
             ('fused-fp32', 'inference fp32, BN folded, '
              'channels_last (+ CUDA graph for R-FCN)'),
             ('fused-bf16', 'inference bf16, BN folded, '
              'channels_last (+ CUDA graph for R-FCN)')]
    if not args.skip_compile:
        modes.append(('compiled', 'inference fp32, BN folded, torch.compile'
                      ' (R-FCN fixed shapes, fullgraph)'))
    for mode, what in modes:
        infer[mode] = (infer_ms('c4', dev, mode, w,
                                r), infer_ms('rfcn', dev, mode, w, r))
        row(what, *infer[mode])
    train_notes = []
    if not args.skip_train:
        for amp in (False, True):
            what = 'bf16 AMP, channels_last' if amp else 'fp32'
            t, f, g = {}, {}, {}
            for n in (300, 2000):
                c4 = train_ms('c4', dev, n, w, r, amp)
                t[n] = (c4, train_ms('rfcn', dev, n, w, r, amp))
                f[n] = (c4, train_ms('rfcn', dev, n, w, r, amp, True))
                g[n] = (c4, train_ms('rfcn', dev, n, w, r, amp, True, True))
                row(f'training step {what}, OHEM from {n} proposals', *t[n])
                row(
                    f'training step {what}, OHEM from {n} proposals, '
                    'R-FCN with fixed-shape losses', *f[n])
                row(
                    f'training step {what}, OHEM from {n} proposals, '
                    'R-FCN fixed-shape, one CUDA graph per step', *g[n])
            for label, times in (('', t), (', fixed-shape losses', f),
                                 (', fixed-shape + CUDA graph', g)):
                rows.append(f'| training {what}{label}, 2000 / 300 | '
                            f'{times[2000][0] / times[300][0]:.2f} | '
                            f'{times[2000][1] / times[300][1]:.2f} | |')
                train_notes.append(
                    f'Training {what}{label}: R-FCN / C4 at 300 proposals '
                    f'{times[300][1] / times[300][0]:.2f} (goal <= 0.5), '
                    f'R-FCN 2000 / 300 '
                    f'{times[2000][1] / times[300][1]:.2f} (goal <= 1.05).')
    fastest = min(v[1] for v in infer.values())
    rows += [
        '', f'Fastest R-FCN mode: {fastest:.2f} ms/img (goal <= 5); '
        f'speed-up over C4 at the same precision: '
        f'{min(c / f for c, f in infer.values()):.2f}x to '
        f'{max(c / f for c, f in infer.values()):.2f}x (goal >= 2.5x).'
    ] + train_notes
    write_table(args, rows)


def write_table(args, rows):
    device = torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'
    table = '\n'.join([f'600x1000, batch 1, random weights, {device}', ''] +
                      rows)
    print('\n' + table)
    if args.out:
        atomic_write(table + '\n', args.out)


if __name__ == '__main__':
    main()
