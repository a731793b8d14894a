"""R-FCN's training losses and post-processing in fixed shapes: batches in
padded slots, no host synchronisation, so that they can be CUDA graphs."""
from .config_checks import (check_fixed_shape_support,
                            check_fixed_shape_train_support, nms_cfg_problems)
from .loss_targets import slot_targets
from .losses import rcnn_loss, rpn_loss
from .post_processing import fixed_shape_detections, fixed_shape_proposals
from .sampling import rcnn_slots
from .slots import inside_image, pack_ground_truth, proposals_to_rois

__all__ = [
    'check_fixed_shape_support', 'check_fixed_shape_train_support',
    'nms_cfg_problems', 'rcnn_loss', 'rpn_loss', 'fixed_shape_detections',
    'fixed_shape_proposals', 'rcnn_slots', 'slot_targets', 'inside_image',
    'pack_ground_truth', 'proposals_to_rois'
]
