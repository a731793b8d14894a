"""R-FCN for MMDetection 3.x.

``import rfcn_mm`` checks that mmcv has its compiled ops, applies the fixes
for today's torch/numpy stack (:mod:`rfcn_mm.compat`) and registers every
module of the project into mmdet's registries: the R-FCN core
(:mod:`rfcn_mm.models`, :mod:`rfcn_mm.ops`) and the optional fast layer
(:mod:`rfcn_mm.fast`).
"""
from .utils import check_mmcv_ops

check_mmcv_ops()

from . import compat  # noqa: E402

compat.apply_all()

from . import registry  # noqa: E402,F401  (the rfcn_mm:: config scope)
from .datasets import *  # noqa: E402,F401,F403
from .engine import *  # noqa: E402,F401,F403
from .fast import *  # noqa: E402,F401,F403
from .models import *  # noqa: E402,F401,F403
from .ops import *  # noqa: E402,F401,F403
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'check_mmcv_ops']
