"""Deformable-ConvNets' R-FCN test network built with ``mx.sym`` at reduced
widths, as an oracle for converted checkpoints.

:data:`SCRIPT` runs in the MXNet environment (:mod:`helpers.mxnet_oracle`).
It builds ``resnet_v1_101_rfcn``'s test symbol (or ``_rfcn_dcn``'s) with the
reference's layer names, operators and settings: MSRA ResNet-101 (3, 4, 23,
3 blocks, stride on the 1x1 convs, ``pool1`` in "full" (ceil) mode, res5 at
stride 1 with dilation 2, BatchNorm eps 1e-5 on global statistics), the RPN
(two-way softmax, ``contrib.Proposal``), ``conv_new_1``, ``rfcn_cls``,
``rfcn_bbox`` (class-agnostic, 2 x 4 x k*k) and ``PSROIPooling`` (DCN:
deformable res5 3x3 convs with 4 offset groups, ``rfcn_*_offset_t`` and
``DeformablePSROIPooling``), global average voting and the softmax. Every
width is ``case['width'] / 64`` of the real one; the block counts are
real. Random weights go to ``net.params`` with ``mx.nd.save`` under the
``arg:``/``aux:`` names Deformable-ConvNets saves; the forward on
``data.npy`` writes the RPN outputs, the proposals with their scores and
the class probabilities and box deltas for those proposals and for the
fixed RoIs of ``rois.npy``, and the conv5 features.
"""

SCRIPT = r'''
import json
import numpy as np
import mxnet as mx

case = json.load(open('case.json'))
w, k, C, A = case['width'], case['k'], case['classes'], case['anchors']
dcn = case['dcn']
rng = np.random.RandomState(case['seed'])
data = mx.sym.Variable('data')
im_info = mx.sym.Variable('im_info')
fixed_rois = mx.sym.Variable('fixed_rois')


def relu(x):
    return mx.sym.Activation(data=x, act_type='relu')


def bn(name, x):
    return mx.sym.BatchNorm(name=name, data=x, use_global_stats=True,
                            fix_gamma=False, eps=1e-5)


def conv(name, x, filters, kernel, stride=1, pad=0, dilate=1, bias=False):
    return mx.sym.Convolution(name=name, data=x, num_filter=filters,
                              kernel=(kernel, kernel), stride=(stride, stride),
                              pad=(pad, pad), dilate=(dilate, dilate),
                              no_bias=not bias)


def unit(x, stage, block, planes, stride, dilate, first, deformable):
    res, norm = f'res{stage}{block}', f'bn{stage}{block}'
    short = bn(f'{norm}_branch1', conv(f'{res}_branch1', x, 4 * planes, 1,
                                       stride)) if first else x
    a = relu(bn(f'{norm}_branch2a',
                conv(f'{res}_branch2a', x, planes, 1, stride)))
    if deformable:
        offset = conv(f'{res}_branch2b_offset', a, 72, 3, 1, 2, 2, bias=True)
        b = mx.contrib.sym.DeformableConvolution(
            name=f'{res}_branch2b', data=a, offset=offset, num_filter=planes,
            pad=(2, 2), kernel=(3, 3), num_deformable_group=4, stride=(1, 1),
            dilate=(2, 2), no_bias=True)
    else:
        b = conv(f'{res}_branch2b', a, planes, 3, 1, dilate, dilate)
    b = relu(bn(f'{norm}_branch2b', b))
    c = bn(f'{norm}_branch2c', conv(f'{res}_branch2c', b, 4 * planes, 1))
    return relu(short + c)


def blocks(stage, n):
    if stage in (3, 4):  # MSRA's names for the long stages: a, b1, b2 ...
        return ['a'] + [f'b{i}' for i in range(1, n)]
    return [chr(ord('a') + i) for i in range(n)]


x = relu(bn('bn_conv1', conv('conv1', data, w, 7, 2, 3)))
x = mx.sym.Pooling(data=x, pooling_convention='full', pad=(0, 0),
                   kernel=(3, 3), stride=(2, 2), pool_type='max')
for stage, n, planes, stride in ((2, 3, w, 1), (3, 4, 2 * w, 2),
                                 (4, 23, 4 * w, 2)):
    for i, block in enumerate(blocks(stage, n)):
        x = unit(x, stage, block, planes, stride if i == 0 else 1, 1,
                 i == 0, False)
conv4 = x
for i, block in enumerate(blocks(5, 3)):
    x = unit(x, 5, block, 8 * w, 1, 2, i == 0, dcn)
conv5 = x

rpn = relu(conv('rpn_conv_3x3', conv4, case['rpn_channels'], 3, 1, 1,
                bias=True))
rpn_cls_score = conv('rpn_cls_score', rpn, 2 * A, 1, bias=True)
rpn_bbox_pred = conv('rpn_bbox_pred', rpn, 4 * A, 1, bias=True)
prob = mx.sym.SoftmaxActivation(
    data=mx.sym.Reshape(data=rpn_cls_score, shape=(0, 2, -1, 0)),
    mode='channel')
rpn_cls_prob = mx.sym.Reshape(data=prob, shape=(0, 2 * A, -1, 0))
rois, roi_scores = mx.contrib.sym.Proposal(
    cls_prob=rpn_cls_prob, bbox_pred=rpn_bbox_pred, im_info=im_info,
    output_score=True, feature_stride=16, scales=tuple(case['scales']),
    ratios=tuple(case['ratios']), rpn_pre_nms_top_n=case['pre_nms'],
    rpn_post_nms_top_n=case['post_nms'], threshold=0.7, rpn_min_size=0)

new = relu(conv('conv_new_1', conv5, case['mid_channels'], 1, bias=True))
rfcn_cls = conv('rfcn_cls', new, k * k * C, 1, bias=True)
rfcn_bbox = conv('rfcn_bbox', new, k * k * 8, 1, bias=True)
if dcn:
    cls_offset_t = conv('rfcn_cls_offset_t', new, 2 * k * k * C, 1,
                        bias=True)
    bbox_offset_t = conv('rfcn_bbox_offset_t', new, 2 * k * k, 1, bias=True)


def head(r, tag):
    if dcn:
        pool = dict(group_size=k, pooled_size=k, part_size=k,
                    sample_per_part=4, spatial_scale=1 / 16.)
        cls_trans = mx.contrib.sym.DeformablePSROIPooling(
            data=cls_offset_t, rois=r, no_trans=True, output_dim=2 * C,
            name=f'cls_offset_{tag}', **pool)
        bbox_trans = mx.contrib.sym.DeformablePSROIPooling(
            data=bbox_offset_t, rois=r, no_trans=True, output_dim=2,
            name=f'bbox_offset_{tag}', **pool)
        cls = mx.contrib.sym.DeformablePSROIPooling(
            data=rfcn_cls, rois=r, trans=cls_trans, no_trans=False,
            trans_std=0.1, output_dim=C, name=f'cls_pool_{tag}', **pool)
        box = mx.contrib.sym.DeformablePSROIPooling(
            data=rfcn_bbox, rois=r, trans=bbox_trans, no_trans=False,
            trans_std=0.1, output_dim=8, name=f'bbox_pool_{tag}', **pool)
    else:
        cls = mx.contrib.sym.PSROIPooling(
            data=rfcn_cls, rois=r, group_size=k, pooled_size=k,
            output_dim=C, spatial_scale=1 / 16., name=f'cls_pool_{tag}')
        box = mx.contrib.sym.PSROIPooling(
            data=rfcn_bbox, rois=r, group_size=k, pooled_size=k,
            output_dim=8, spatial_scale=1 / 16., name=f'bbox_pool_{tag}')
    cls = mx.sym.Reshape(data=mx.sym.Pooling(
        data=cls, pool_type='avg', global_pool=True, kernel=(k, k)),
        shape=(-1, C))
    box = mx.sym.Reshape(data=mx.sym.Pooling(
        data=box, pool_type='avg', global_pool=True, kernel=(k, k)),
        shape=(-1, 8))
    return mx.sym.SoftmaxActivation(data=cls), box


outputs = [conv5, rpn_cls_prob, rpn_bbox_pred, rois, roi_scores]
outputs += list(head(rois, 'proposals')) + list(head(fixed_rois, 'fixed'))
net = mx.sym.Group(outputs)

image = np.load('data.npy')
fixed = np.load('rois.npy')
shapes = dict(data=image.shape, im_info=(1, 3), fixed_rois=fixed.shape)
arg_shapes, _, aux_shapes = net.infer_shape(**shapes)
args, auxs = {}, {}
gains = case['gains']
for name, shape in zip(net.list_arguments(), arg_shapes):
    if name in shapes:
        continue
    if name.endswith('_weight'):
        fan_in = int(np.prod(shape[1:]))
        layer = name[:-len('_weight')]
        gain = gains.get(layer, gains['default'])
        value = rng.normal(0, gain / np.sqrt(fan_in), shape)
    elif name.endswith('_gamma'):
        branch2c = name.endswith('branch2c_gamma')
        value = rng.uniform(0.1, 0.3, shape) if branch2c else \
            rng.uniform(0.5, 1.5, shape)
    else:  # biases and betas
        value = rng.normal(0, 0.1, shape)
    args[name] = mx.nd.array(value.astype(np.float32))
for name, shape in zip(net.list_auxiliary_states(), aux_shapes):
    value = rng.normal(0, 0.2, shape) if name.endswith('moving_mean') \
        else rng.uniform(0.5, 2.0, shape)
    auxs[name] = mx.nd.array(value.astype(np.float32))
saved = {f'arg:{n}': v for n, v in args.items()}
saved.update({f'aux:{n}': v for n, v in auxs.items()})
mx.nd.save('net.params', saved)

inputs = dict(data=mx.nd.array(image), fixed_rois=mx.nd.array(fixed),
              im_info=mx.nd.array([[image.shape[2], image.shape[3], 1.0]]))
exe = net.bind(mx.cpu(), args=dict(args, **inputs), aux_states=auxs,
               grad_req='null')
names = ['conv5', 'rpn_cls_prob', 'rpn_bbox_pred', 'rois', 'roi_scores',
         'cls_prob', 'bbox_pred', 'fixed_cls_prob', 'fixed_bbox_pred']
for name, out in zip(names, exe.forward(is_train=False)):
    np.save(f'{name}.npy', out.asnumpy())
'''
