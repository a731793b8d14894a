from .cuda_graph import CUDAGraphRunner

__all__ = ['CUDAGraphRunner']
