# 4-step alternating training on COCO (see rfcn_r101_alt-4step_voc0712.py).
# py-R-FCN's COCO stages run 480k iterations (step 360k) of 1 image, the
# R-FCN ones with iter_size 2; at 8 images per iteration: RPN 60k/45k,
# R-FCN 120k/90k.
_base_ = './rfcn_r101_coco.py'

alternating_cfg = dict(
    variant='4-step',
    rpn=dict(max_iters=60000, milestones=[45000]),
    rfcn=dict(max_iters=120000, milestones=[90000]),
    proposals=dict(nms_pre=6000, max_per_img=300))
