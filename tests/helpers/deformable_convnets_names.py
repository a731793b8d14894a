"""Every array name of Deformable-ConvNets' R-FCN checkpoints, enumerated
from the structure of its symbols (``resnet_v1_101_rfcn`` and
``resnet_v1_101_rfcn_dcn``)."""

BLOCKS = {2: ['a', 'b', 'c'], 3: ['a', 'b1', 'b2', 'b3'],
          4: ['a'] + [f'b{i}' for i in range(1, 23)], 5: ['a', 'b', 'c']}


def reference_names(dcn=False):
    """Every array name of resnet_v1_101_rfcn's checkpoint (``dcn``:
    resnet_v1_101_rfcn_dcn's)."""
    names = ['arg:conv1_weight']
    bn = ['arg:{}_gamma', 'arg:{}_beta', 'aux:{}_moving_mean',
          'aux:{}_moving_var']
    names += [n.format('bn_conv1') for n in bn]
    for stage, blocks in BLOCKS.items():
        for block in blocks:
            branches = ['2a', '2b', '2c'] + (['1'] if block == 'a' else [])
            for br in branches:
                names.append(f'arg:res{stage}{block}_branch{br}_weight')
                names += [n.format(f'bn{stage}{block}_branch{br}') for n in bn]
    for layer in ('rpn_conv_3x3', 'rpn_cls_score', 'rpn_bbox_pred',
                  'conv_new_1', 'rfcn_cls', 'rfcn_bbox'):
        names += [f'arg:{layer}_weight', f'arg:{layer}_bias']
    if dcn:
        for layer in ('res5a_branch2b_offset', 'res5b_branch2b_offset',
                      'res5c_branch2b_offset', 'rfcn_cls_offset_t',
                      'rfcn_bbox_offset_t'):
            names += [f'arg:{layer}_weight', f'arg:{layer}_bias']
    return names
