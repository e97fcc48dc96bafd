"""neuron_platform: AWS CDK constructs and planning code for AWS Neuron clusters.

Plain-Python modules (no CDK import): ``facts``, ``sizing``, ``config``.
Constructs: ``neuron_platform.network``.
"""

__version__ = "0.1.0"
