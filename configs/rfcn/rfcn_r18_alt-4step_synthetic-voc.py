# 4-step alternating training of the demo's small R-FCN on the synthetic
# data, 600 iterations in all as the demo's end-to-end training:
#   python tools/train_alternating.py configs/rfcn/rfcn_r18_alt-4step_synthetic-voc.py
_base_ = './rfcn_r18_synthetic-voc.py'

alternating_cfg = dict(
    variant='4-step',
    rpn=dict(max_iters=150, milestones=[112]),
    rfcn=dict(max_iters=150, milestones=[112]))
