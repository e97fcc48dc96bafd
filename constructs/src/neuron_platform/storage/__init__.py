"""Storage constructs: data buckets and the shared training file system."""

from neuron_platform.storage.data_bucket import DataBucket
from neuron_platform.storage.training_file_system import TrainingFileSystem

__all__ = ["DataBucket", "TrainingFileSystem"]
