from .caffe_pool_resnet import CaffePoolResNet

__all__ = ['CaffePoolResNet']
