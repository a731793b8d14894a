"""R-FCN for MMDetection 3.x.

Importing the package applies the fixes for today's torch/numpy stack
(:mod:`rfcn_mm.compat`) and registers every module of the project into
mmdet's registries.
"""
from . import compat  # noqa: F401  (applies upstream fixes first)
from .ops import *  # noqa: F401,F403
from .version import __version__

__all__ = ['__version__']
