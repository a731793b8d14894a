# The paper's 4-step alternating training of the main config (VOC 07+12):
#   python tools/train_alternating.py configs/rfcn/rfcn_r101_alt-4step_voc0712.py
# Stage lengths are py-R-FCN's VOC schedules (RPN 80k iterations with the
# lr step at 60k, R-FCN 120k/80k with iter_size 2, 1 image each) at this
# config's 8 images per iteration: RPN 10k/7.5k, R-FCN 30k/20k, lr 1e-3.
# variant='5-stage' (or --variant 5-stage) runs py-R-FCN's five stages.
_base_ = './rfcn_r101_voc0712.py'

alternating_cfg = dict(
    variant='4-step',
    rpn=dict(max_iters=10000, milestones=[7500]),
    rfcn=dict(max_iters=30000, milestones=[20000]),
    # the RPN writing the proposals the R-FCN stages learn from: 6000 boxes
    # before NMS 0.7, 300 after (py-R-FCN's stage settings)
    proposals=dict(nms_pre=6000, max_per_img=300))
