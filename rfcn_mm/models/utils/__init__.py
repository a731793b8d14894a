from .cuda_graph import CUDAGraphRunner, TrainGraphRunner

__all__ = ['CUDAGraphRunner', 'TrainGraphRunner']
