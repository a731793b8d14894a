from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


@MODELS.register_module()
class RFCN(TwoStageDetector):
    """`R-FCN <https://arxiv.org/abs/1605.06409>`_: region-based fully
    convolutional networks.

    A plain :class:`TwoStageDetector`: the backbone ends at conv4 (stride
    16), whose features go to the RPN and to the RoI head; the RoI head runs
    the (dilated) conv5 stage on the whole map as its ``shared_head`` before
    the position-sensitive score maps (see :class:`PSRoIHead`). That keeps
    the paper's routing, "RPN on conv4, R-FCN on conv5", explicit in the
    config without changing mmdet's detector.
    """

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 neck: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=init_cfg,
            data_preprocessor=data_preprocessor)
