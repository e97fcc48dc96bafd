"""Command line of the Neuron platform: configuration checks, the Neuron software matrix,
first-run manifests, compiles, serving plans, endpoint calls and training jobs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from neuron_platform import versions
from neuron_platform.admission import TOPOLOGY_CHOICES, queue_table, training_queues
from neuron_platform.capacity import plan_pool
from neuron_platform.compile.client import (
    CompileCliError,
    compile_stack_name,
    current_step,
    describe_outcome,
    find_pipeline,
    follow,
    registry_item,
    registry_items,
    size_job,
    start,
    table_lines,
)
from neuron_platform.compile.spec import image_tag, load_spec
from neuron_platform.config import ConfigError, PlatformConfig, load_config
from neuron_platform.diagram import diagram
from neuron_platform.k8s.workloads import efa_pair_pods, inf2_smoke_pod
from neuron_platform.neuron_matrix import matrix_lines, rule_lines
from neuron_platform.neuron_stack import NeuronStackError, Role, compile_toolchain
from neuron_platform.offerings import check_offerings, summarize
from neuron_platform.serving.planner import PlanError, plan, plan_table
from neuron_platform.serving.spec import ServingSpec
from neuron_platform.train_jobs import TrainJobError, TrainJobRequest, build_train_job
from neuron_platform.validation import format_error, read_yaml


def _config_validate(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    pools = ", ".join(f"{p.name} ({p.family}{', efa' if p.efa else ''})" for p in config.pools) or "none"
    print(f"ok: {args.path}: project {config.project.name} in {config.project.region}, pools: {pools}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    print(json.dumps(config.model_dump(mode="json"), indent=2))
    return 0


def _config_check_offerings(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    try:
        import boto3  # only this command talks to AWS
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print("check-offerings needs boto3: pip install boto3", file=sys.stderr)
        return 3
    ec2 = boto3.Session(profile_name=args.profile).client("ec2", region_name=config.project.region)
    try:
        report = check_offerings(config, ec2)
    except (BotoCoreError, ClientError) as err:
        print(f"offering error: {args.path}: cannot ask EC2 in {config.project.region}: {err}", file=sys.stderr)
        return 3
    lines = summarize(report, args.path)
    for line in lines["stdout"]:
        print(line)
    for line in lines["stderr"]:
        print(line, file=sys.stderr)
    return 2 if report.problems else 0


def _aws_clients(args: argparse.Namespace, region: str) -> Any:
    try:
        import boto3  # only the commands that talk to AWS need it
    except ImportError:
        raise CompileCliError("this command needs boto3: pip install boto3") from None
    return boto3.Session(profile_name=args.profile, region_name=region)


def _configured_endpoint(config: PlatformConfig, name: str, *, command: str, source: str) -> ServingSpec | None:
    """The endpoint ``name`` of ``config``; prints the configured names when there is none."""
    spec = config.endpoint(name)
    if spec is None:
        names = ", ".join(e.name for e in config.serving.endpoints) or "none"
        print(f"{command}: {source}: no endpoint {name!r}; configured: {names}", file=sys.stderr)
    return spec


def _compile(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config.compile.enabled:
        print(
            f"compile: {args.config}: compile.enabled is false; enable it and deploy the compile stack", file=sys.stderr
        )
        return 2
    endpoint = None
    spec = None
    if args.action == "submit":
        if bool(args.spec) == bool(args.endpoint):
            print("compile submit: give a spec file or --endpoint NAME (one of them)", file=sys.stderr)
            return 2
        if args.endpoint:
            endpoint = _configured_endpoint(config, args.endpoint, command="compile submit", source=args.config)
            if endpoint is None:
                return 2
        else:
            spec = load_spec(args.spec, compile_machines=config.compile.instance_types)
    try:
        session = _aws_clients(args, config.project.region)
        pipeline = find_pipeline(session.client("cloudformation"), compile_stack_name(config.project.name))
        if args.action == "submit":
            if endpoint is not None:
                # The endpoint's own compile spec: the artifacts its deployment points at.
                served = config.plan_endpoint(endpoint)
                account = session.client("sts").get_caller_identity()["Account"]
                spec = served.compile_spec(f"{account}.dkr.ecr.{config.project.region}.amazonaws.com")
                where = f"on pool {endpoint.pool}" if served.compile_placement == "cluster" else "on AWS Batch"
                print(f"endpoint {endpoint.name}: compiling {where} for cache key {spec.cache_key()}")
            assert spec is not None
            toolchain = compile_toolchain(image_tag(spec.image) or "", spec.sdk_version)
            if endpoint is None and toolchain.engine != "optimum-neuron":
                raise NeuronStackError(
                    "image",
                    f"got {spec.image!r}; {toolchain.engine} artifacts compile on an endpoint's own pool: "
                    "configure the endpoint and run compile submit --endpoint NAME",
                )
            sfn = session.client("stepfunctions")
            resources = size_job(spec, config.compile.instance_types, pipeline.max_memory_gib)
            arn = start(
                sfn,
                pipeline,
                spec,
                resources,
                now=time.time(),
                neuron=toolchain.as_input(),
                endpoint=endpoint.name if endpoint is not None else None,
            )
            print(f"started {arn}")
            print(f"  sized: {resources['memory_gib']} GiB, {resources['vcpus']} vCPUs")
            if args.no_wait:
                return 0
            code, lines = describe_outcome(follow(sfn, arn, poll_seconds=args.poll_seconds))
        elif args.action == "status":
            sfn = session.client("stepfunctions")
            execution = sfn.describe_execution(executionArn=args.execution)
            step = current_step(sfn, args.execution)
            if execution["status"] == "RUNNING":
                print(f"RUNNING: {step or 'starting'} (since {execution['startDate']})")
                return 0
            code, lines = describe_outcome(execution)
        elif args.action == "list":
            items = list(registry_items(session.client("dynamodb"), pipeline.registry_table))
            lines, code = table_lines(items), 0
        else:
            item = registry_item(session.client("dynamodb"), pipeline.registry_table, args.cache_key)
            lines, code = [json.dumps(item, indent=2, default=str)], 0
    except NeuronStackError as err:
        print(f"compile: {args.spec or args.endpoint}: {err.field}: {err}", file=sys.stderr)
        return 2
    except CompileCliError as err:
        print(f"compile: {err}", file=sys.stderr)
        return 3
    for line in lines:
        print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _plan(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else None
    if args.spec:
        path = Path(args.spec)
        try:
            spec = ServingSpec.model_validate(read_yaml(path, ServingSpec))
        except ValidationError as err:
            raise ConfigError(str(path), [format_error(e, ServingSpec) for e in err.errors()]) from None
    else:
        if config is None or not args.endpoint:
            print("plan: give a spec file, or --config with --endpoint NAME", file=sys.stderr)
            return 2
        found = _configured_endpoint(config, args.endpoint, command="plan", source=args.config)
        if found is None:
            return 2
        spec = found
    try:
        result = config.plan_endpoint(spec) if config else plan(spec, project=args.project)
    except PlanError as err:
        print(f"plan: {args.spec or args.endpoint}: {err}", file=sys.stderr)
        return 2
    print("\n".join(plan_table(result)))
    return 0


# The smoke client lives with the runtime code (runtime_assets/serve), beside this package's
# source in the repository (like the Karpenter teardown handler).
SMOKE_CLIENT = Path(__file__).resolve().parents[3] / "runtime_assets" / "serve" / "smoke_client.py"


def _load_smoke_client() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("neuron_smoke_client", SMOKE_CLIENT)
    if spec is None or spec.loader is None or not SMOKE_CLIENT.is_file():
        raise CompileCliError(f"{SMOKE_CLIENT} not found; run from a checkout of the repository")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _ingress_url(name: str, namespace: str, https: bool) -> str:
    import shutil
    import subprocess

    kubectl = shutil.which("kubectl")
    hint = (
        f"pass --url, e.g. after 'kubectl port-forward -n {namespace} svc/{name} 8000:80': --url http://localhost:8000"
    )
    if kubectl is None:
        raise CompileCliError(f"kubectl not found to look up the load balancer; {hint}")
    jsonpath = "{.status.loadBalancer.ingress[0].hostname}"
    result = subprocess.run(
        [kubectl, "get", "ingress", name, "-n", namespace, "-o", f"jsonpath={jsonpath}"],
        capture_output=True,
        text=True,
        check=False,
    )
    host = result.stdout.strip()
    if result.returncode != 0 or not host:
        raise CompileCliError(f"no load balancer address for ingress {namespace}/{name} yet; {hint}")
    return f"{'https' if https else 'http'}://{host}"


def _endpoint(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    spec = _configured_endpoint(config, args.name, command="endpoint", source=args.config)
    if spec is None:
        return 2
    try:
        client = _load_smoke_client()
        if spec.backend == "sagemaker":
            runtime = _aws_clients(args, config.project.region).client("sagemaker-runtime")
            endpoint_name = f"{config.project.name}-{spec.name}"
            answer = client.chat_sagemaker(runtime, endpoint_name, spec.name, args.prompt, max_tokens=args.max_tokens)
        else:
            url = args.url or _ingress_url(spec.name, config.serving.namespace, bool(spec.certificate_arn))
            answer = client.chat_http(url, spec.name, args.prompt, max_tokens=args.max_tokens)
    except CompileCliError as err:
        print(f"endpoint: {err}", file=sys.stderr)
        return 2
    except client.EndpointError as err:
        print(f"endpoint: {err}", file=sys.stderr)
        return int(err.code)
    print(answer.text)
    print(answer.summary())
    return 0


def _diagram(args: argparse.Namespace) -> int:
    assembly = Path(args.assembly)
    if not (assembly / "manifest.json").is_file():
        print(f"diagram: {assembly} is not a synthesized cloud assembly (run cdk synth first)", file=sys.stderr)
        return 2
    print(diagram(assembly), end="")
    return 0


def _configured_pool(config: PlatformConfig, name: str, *, command: str, source: str) -> bool:
    if config.pool(name) is None:
        names = ", ".join(p.name for p in config.pools) or "none"
        print(f"{command}: {source}: --pool: got {name!r}; configured pools: {names}", file=sys.stderr)
        return False
    return True


def _first_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not _configured_pool(config, args.pool, command="first-run", source=args.config):
        return 2
    stack = config.pool_stack(args.pool)
    role: Role = "serving" if args.check == "inf2" else "training"
    if stack.workload(role) is None:
        print(
            f"first-run {args.check}: --pool: {args.pool} is a {stack.purpose} pool; it runs no {role} image",
            file=sys.stderr,
        )
        return 2
    image = stack.image(role)
    objects = (
        [inf2_smoke_pod(args.pool, image)]
        if args.check == "inf2"
        else efa_pair_pods(args.pool, image, args.instance_type)
    )
    print(yaml.safe_dump_all(objects, sort_keys=False), end="")
    return 0


def _versions(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.get:
        return _versions_get(config, args)
    print("\n".join(matrix_lines(config)))
    for line in rule_lines():
        print(line)
    return 0


def _versions_get(config: PlatformConfig, args: argparse.Namespace) -> int:
    """One value for scripts (the Makefile's image builds)."""
    if args.endpoint:
        spec = _configured_endpoint(config, args.endpoint, command="versions", source=args.config)
        if spec is None:
            return 2
        served = config.plan_endpoint(spec)
        registry = f"{versions.DLC_ACCOUNT}.dkr.ecr.{config.project.region}.amazonaws.com/"
        values = {
            "serving-image": served.serving_image,
            # What `docker build` pulls: SageMaker images live in the regional DLC registry.
            "base-image": (registry if spec.backend == "sagemaker" else "") + served.serving_image,
            "compile-tag": served.compile_image_tag,
            "neuronx-cc": served.compiler,
            "runtime": served.runtime,
            "sdk": served.compile_sdk,
            "engine": served.engine,
        }
    elif args.pool:
        if not _configured_pool(config, args.pool, command="versions", source=args.config):
            return 2
        stack = config.pool_stack(args.pool)
        values = {
            "sdk": stack.sdk.version,
            "ami": stack.ami.release,
            "driver": stack.ami.driver,
            **{f"{w.role}-image": w.uri for w in stack.workloads},
            "nxdt-version": stack.nxdt_version or "",
            "nxdt-examples-ref": stack.nxdt_examples.commit if stack.nxdt_examples else "",
        }
    else:
        print("versions --get: give --pool NAME or --endpoint NAME", file=sys.stderr)
        return 2
    value = values.get(args.get)
    if not value:
        where = f"pool {args.pool}" if args.pool else f"endpoint {args.endpoint}"
        known = ", ".join(k for k, v in values.items() if v)
        print(f"versions: --get: {where} has no {args.get!r}; it has: {known}", file=sys.stderr)
        return 2
    print(value)
    return 0


def _queues(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    queues = training_queues([plan_pool(p) for p in config.pools]) if config.training.enabled else []
    if not queues:
        print(
            f"queues: {args.config}: no training queues (training.enabled with an EFA training pool)", file=sys.stderr
        )
        return 2
    print("\n".join(queue_table(queues)))
    return 0


def _train_job(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    request = TrainJobRequest(
        name=args.name,
        pool=args.pool,
        command=tuple(command),
        nodes=args.nodes,
        image=args.image,
        instance_type=args.instance_type,
        namespace=args.namespace,
        topology=args.topology,
    )
    try:
        job = build_train_job(config, request)
    except TrainJobError as err:
        print(f"train-job: {args.config}: {err.option}: {err}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(job, sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neuron_platform", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    config = groups.add_parser("config", help="check a platform configuration file")
    actions = config.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="validate a config file; exit 2 with one line per problem")
    validate.add_argument("path")
    validate.set_defaults(func=_config_validate)
    show = actions.add_parser("show", help="print the config with every default filled in (JSON)")
    show.add_argument("path")
    show.set_defaults(func=_config_show)
    offerings = actions.add_parser(
        "check-offerings",
        help="ask EC2 (your credentials) whether each pool's types are offered in its zones; exit 2 if not",
    )
    offerings.add_argument("path")
    offerings.add_argument("--profile", default=None, help="AWS profile (default: the usual credential chain)")
    offerings.set_defaults(func=_config_check_offerings)

    first_run = groups.add_parser("first-run", help="print a first-run check manifest (kubectl apply -f -)")
    first_run.add_argument("check", choices=["inf2", "efa-pair"], help="one inf2 device, or two whole EFA nodes")
    first_run.add_argument("--pool", required=True, help="the pool name from your config")
    first_run.add_argument("--config", default="config/default.yaml", help="the platform config (the pool's images)")
    first_run.add_argument("--instance-type", default="trn1.32xlarge", help="efa-pair: the pool's instance type")
    first_run.set_defaults(func=_first_run)

    matrix = groups.add_parser(
        "versions", help="print the Neuron matrix: per pool the SDK, AMI, driver and each image with its runtime"
    )
    matrix.add_argument("--config", default="config/default.yaml", help="the platform config")
    matrix.add_argument("--pool", default=None, help="with --get: a pool of the config")
    matrix.add_argument("--endpoint", default=None, help="with --get: an endpoint of the config")
    matrix.add_argument(
        "--get",
        default=None,
        help="print one value: sdk, ami, driver, serving-image, training-image, compile-image, nxdt-examples-ref "
        "(pools); serving-image, base-image, compile-tag, neuronx-cc, runtime, sdk, engine (endpoints)",
    )
    matrix.set_defaults(func=_versions)

    compile_ = groups.add_parser("compile", help="compile a model once and look up compiled artifacts")
    compile_actions = compile_.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("submit", "validate a spec, start the pipeline, follow it to the end (cache hits end in seconds)"),
        ("status", "where a run is, or how it ended"),
        ("list", "registered artifacts, newest first"),
        ("show", "one registry entry with its spec and file hashes"),
    ):
        action = compile_actions.add_parser(name, help=help_text)
        action.add_argument("--config", default="config/default.yaml", help="the platform config (project, region)")
        action.add_argument("--profile", default=None, help="AWS profile (default: the usual credential chain)")
        action.set_defaults(func=_compile)
        if name == "submit":
            action.add_argument("spec", nargs="?", help="compile spec YAML")
            action.add_argument("--endpoint", default=None, help="compile what this configured endpoint serves")
            action.add_argument("--no-wait", action="store_true", help="print the execution ARN and return")
            action.add_argument("--poll-seconds", type=float, default=15)
        elif name == "status":
            action.add_argument("execution", help="execution ARN printed by submit")
        elif name == "show":
            action.add_argument("cache_key")

    planner = groups.add_parser("plan", help="derive an endpoint's instance type, placement, compile spec and cost")
    planner.add_argument("spec", nargs="?", help="serving spec YAML (or --config with --endpoint)")
    planner.add_argument("--config", default=None, help="platform config: pool types and project name")
    planner.add_argument("--endpoint", default=None, help="plan this endpoint of --config")
    planner.add_argument("--project", default="neuron", help="project name for image names without --config")
    planner.set_defaults(func=_plan)

    endpoint = groups.add_parser("endpoint", help="talk to a serving endpoint")
    endpoint_actions = endpoint.add_subparsers(dest="action", required=True)
    invoke = endpoint_actions.add_parser("invoke", help="send one chat completion (OpenAI API) and print the answer")
    invoke.add_argument("name", help="endpoint name from the config")
    invoke.add_argument("prompt")
    invoke.add_argument("--config", default="config/default.yaml")
    invoke.add_argument("--url", default=None, help="EKS: base URL (default: the Ingress's load balancer)")
    invoke.add_argument("--profile", default=None)
    invoke.add_argument("--max-tokens", type=int, default=128)
    invoke.set_defaults(func=_endpoint)

    drawing = groups.add_parser("diagram", help="print the architecture of a synthesized app as Graphviz DOT")
    drawing.add_argument("assembly", nargs="?", default="cdk.out", help="cdk synth output directory")
    drawing.set_defaults(func=_diagram)

    queues = groups.add_parser("queues", help="print the Kueue training queues and their quotas (Markdown)")
    queues.add_argument("--config", default="config/default.yaml", help="the platform config")
    queues.set_defaults(func=_queues)

    job = groups.add_parser(
        "train-job", help="print a TrainJob for an EFA pool's Neuron runtime and Kueue queue (kubectl apply -f -)"
    )
    job.add_argument("--name", required=True)
    job.add_argument("--pool", required=True, help="an EFA training pool from your config")
    job.add_argument(
        "--instance-type", default=None, help="checked against the pool (default: the type its runtime runs)"
    )
    job.add_argument("--nodes", type=int, default=2, help="whole nodes, one pod each (default: 2)")
    job.add_argument("--namespace", default=None, help="checked against training.namespace (its default)")
    job.add_argument(
        "--topology",
        choices=TOPOLOGY_CHOICES,
        default=None,
        help="place the nodes within one network block: required, preferred (default where the pool is "
        "placed by network topology) or none",
    )
    job.add_argument("--config", default="config/default.yaml", help="the platform config (pool and its image)")
    job.add_argument("--image", default=None, help="training image with your code (default: the pool's training image)")
    job.add_argument("command", nargs=argparse.REMAINDER, help="-- torchrun <script> <args>")
    job.set_defaults(func=_train_job)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print("\n".join(err.messages()), file=sys.stderr)
        return 2
    except NeuronStackError as err:
        print(f"neuron stack error: {err.field}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
