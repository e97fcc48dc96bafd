"""Tags the reference app puts on everything it creates."""

# Cost allocation and ownership: on every CloudFormation resource (stacks/platform.py)
# and on the instances Karpenter launches (their EC2NodeClass tags).
PROJECT_TAG = "neuron-platform:project"
