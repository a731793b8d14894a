"""The paper's alternating training of RPN and R-FCN (see
:mod:`.stages` for the variants and :mod:`.workflow` for how they run)."""
from .stage_checkpoints import (SharedLayersDifferError,
                                merge_stage_checkpoints,
                                shared_layers_difference)
from .stage_proposals import (ProposalFileError, proposal_recall,
                              split_proposals)
from .stages import (VARIANTS, Stage, alternating_settings, dataset_leaves,
                     proposal_dump_config, proposal_pipeline,
                     stage_train_config)
from .workflow import AlternatingStageError, AlternatingTraining

__all__ = [
    'AlternatingStageError', 'AlternatingTraining', 'ProposalFileError',
    'SharedLayersDifferError', 'Stage', 'VARIANTS', 'alternating_settings',
    'dataset_leaves', 'merge_stage_checkpoints', 'proposal_dump_config',
    'proposal_pipeline', 'proposal_recall', 'shared_layers_difference',
    'split_proposals', 'stage_train_config'
]
