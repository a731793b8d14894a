from .batch_bucket_pad import BatchBucketPad

__all__ = ['BatchBucketPad']
