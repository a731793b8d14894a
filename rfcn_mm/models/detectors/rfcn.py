from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class RFCN(TwoStageDetector):
    """`R-FCN <https://arxiv.org/abs/1605.06409>`_: region-based fully
    convolutional networks.

    A :class:`TwoStageDetector` whose backbone ends at conv4 (stride 16).
    Its features go to the RPN and to the RoI head, which runs the dilated
    conv5 stage on the whole map as its ``shared_head`` before the
    position-sensitive score maps (:class:`PSRoIHead`): the paper's "RPN on
    conv4, R-FCN on conv5", explicit in the config. Training and inference
    are mmdet's own ``loss`` and ``predict``.

    :class:`rfcn_mm.fast.FastRFCN` is the same network (the same weights
    and checkpoints) with fixed-shape training and inference and CUDA
    graphs.
    """

    # train_cfg keys beside mmdet's (rpn, rpn_proposal, rcnn) that this
    # class reads; a subclass that reads more names them here
    train_cfg_keys: tuple = ()

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        unknown = sorted(
            set(train_cfg or {}) -
            {'rpn', 'rpn_proposal', 'rcnn', *self.train_cfg_keys})
        if unknown:
            fast = {'fixed_shape', 'cuda_graph', 'max_graphs'} & set(unknown)
            raise ValueError(
                f'model.train_cfg has keys {type(self).__name__} does not '
                f'read: {", ".join(unknown)}' +
                ('; fixed_shape, cuda_graph and max_graphs are options of '
                 'model.type=\'FastRFCN\'' if fast else ''))
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            data_preprocessor=data_preprocessor)
