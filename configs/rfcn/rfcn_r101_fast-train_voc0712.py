# The main config trained with no host synchronisation: the same losses
# computed in fixed shapes, forward + backward replayed as CUDA graphs (one
# GPU per process; under DDP the fixed-shape losses apply without graphs),
# and every batch padded to one of two sizes, landscape or portrait, so that
# two graphs serve all of VOC (images resized to at most 1000 x 600).
# FastRFCN (rfcn_mm.fast) has RFCN's modules: checkpoints load either way.
_base_ = './rfcn_r101_voc0712.py'
model = dict(
    type='FastRFCN',
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchBucketPad', sizes=[(608, 1008), (1008, 608)])
    ]),
    train_cfg=dict(fixed_shape=True, cuda_graph=True))
# every shape recurs, so cuDNN's autotuning pays for itself
env_cfg = dict(cudnn_benchmark=True)
