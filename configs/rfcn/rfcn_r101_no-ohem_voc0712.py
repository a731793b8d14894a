# Without OHEM: mmdet's random 128 RoIs per image at 25% foreground.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    train_cfg=dict(
        rcnn=dict(
            sampler=dict(
                _delete_=True,
                type='RandomSampler',
                num=128,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True))))
