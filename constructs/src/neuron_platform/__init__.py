"""neuron_platform: AWS CDK constructs and planning code for AWS Neuron (Trainium and
Inferentia2) clusters on EKS.

Install with ``pip install ./constructs`` (or the git URL with ``#subdirectory=constructs``);
the constructs' default runtime code ships inside the package (:mod:`neuron_platform.assets`).

Constructs (typed keyword arguments, resources as attributes, an example in each docstring):

- ``neuron_platform.network``: ``NeuronVpc`` (created or existing VPC, node subnets,
  endpoints, flow logs) and ``EfaSecurityGroup``.
- ``neuron_platform.cluster``: ``NeuronCluster`` (EKS, system nodes, add-ons), ``Karpenter``,
  ``KarpenterTeardown``, ``NeuronDevicePlugins``, ``NeuronNodePool``,
  ``LoadBalancerController``, ``Keda``, ``TrainingPlatform``, ``GangAdmission``,
  ``LustreVolume`` and ``PodIdentityRole``. Each takes ``cluster=`` as a ``NeuronCluster``
  or an ``aws_eks_v2.Cluster`` and reads the cluster's name from it.
- ``neuron_platform.storage``: ``DataBucket`` and ``TrainingFileSystem`` (FSx for Lustre).
- ``neuron_platform.compile``: ``artifact_store.ArtifactStore``,
  ``compile_pipeline.CompilePipeline`` and ``cluster_compile.ClusterCompile``; the compile
  spec (``.spec``), cache key (``.cache_key``) and CLI client (``.client``) are plain Python.
- ``neuron_platform.serving``: ``eks_endpoint.EksEndpoint`` and
  ``sagemaker_endpoint.SageMakerEndpoint``; the serving spec (``.spec``) and planner
  (``.planner``) are plain Python.
- ``neuron_platform.operations``: ``neuron_metrics.NeuronMetrics`` (managed Prometheus,
  collector, alert rules), ``platform_alarms.PlatformAlarms`` and
  ``platform_dashboard.PlatformDashboard``; the Prometheus configuration
  (``.prometheus_config``) and Grafana dashboard (``.grafana_dashboard``) are plain Python.

CDK helpers: ``compliance`` (cdk-nag acknowledgments, checkov skips), ``launch_template``
(the hardened launch template), ``log_encryption`` (log-group keys, retention).

Plain Python (no CDK import): ``config`` (the validated configuration model), ``capacity``
(``plan_pool``: a pool's NodePool plan), ``admission`` (Kueue queues and quotas), ``sizing``
(subnet planning), ``facts`` (instance, region and zone facts), ``versions`` (every pinned
version), ``neuron_data``, ``neuron_stack`` and ``neuron_matrix`` (the Neuron SDK, AMI and
image of each pool and endpoint, from vendored upstream data), ``k8s`` (typed Kubernetes
object builders), ``train_jobs`` (TrainJobs checked against the config), ``offerings`` (zone
offering checks against EC2), ``ec2_instance_types`` (instance types botocore knows),
``diagram`` (architecture diagram from ``cdk.out``), ``deploy_time`` (modelled deploy times
from ``cdk.out``), ``validation`` (shared validation
plumbing), ``exit_codes`` (the CLI's exit codes), ``node_runtime`` (the supported Node.js
versions under the CDK) and ``assets`` (where the constructs' runtime code is found).
``python -m neuron_platform`` is the command line.
"""

__version__ = "0.1.0"
