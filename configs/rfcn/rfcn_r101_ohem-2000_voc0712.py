# OHEM mining from 2000 proposals per image instead of 300 (Table 3).
_base_ = './rfcn_r101_voc0712.py'
model = dict(train_cfg=dict(rpn_proposal=dict(max_per_img=2000)))
