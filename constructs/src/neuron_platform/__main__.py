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
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from pydantic import ValidationError

from neuron_platform import versions
from neuron_platform.admission import TOPOLOGY_CHOICES, queue_table, training_queues
from neuron_platform.assets import runtime_asset
from neuron_platform.capacity import plan_pool
from neuron_platform.compile.client import (
    CompileCliError,
    check_cluster_compile,
    check_image_home,
    compile_stack_name,
    current_step,
    describe_outcome,
    find_pipeline,
    follow,
    image_tags,
    registry_item,
    registry_items,
    size_job,
    start,
    table_lines,
)
from neuron_platform.compile.spec import CompileSpec, load_spec
from neuron_platform.config import ConfigError, EndpointPoolError, PlatformConfig, load_config
from neuron_platform.diagram import diagram
from neuron_platform.exit_codes import ExitCode
from neuron_platform.k8s.workloads import efa_pair_pods, inf2_smoke_pod
from neuron_platform.neuron_matrix import matrix_lines, rule_lines
from neuron_platform.neuron_stack import CompileToolchain, NeuronStackError, Role, compile_toolchain
from neuron_platform.offerings import check_offerings, summarize
from neuron_platform.serving.api_key import endpoint_api_key, serving_stack_name
from neuron_platform.serving.planner import PlanError, ServingPlan, plan, plan_table
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
    ec2 = _aws_session(args, config.project.region).client("ec2")
    try:
        report = check_offerings(config, ec2)
    except (BotoCoreError, ClientError) as err:
        if _credentials_problem(err) is not None:
            raise
        print(f"offering error: {args.path}: cannot ask EC2 in {config.project.region}: {err}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    lines = summarize(report, args.path)
    for line in lines["stdout"]:
        print(line)
    for line in lines["stderr"]:
        print(line, file=sys.stderr)
    return 2 if report.problems else 0


def _aws_session(args: argparse.Namespace, region: str) -> Any:
    """A boto3 session for ``--profile`` (or the usual credential chain) in ``region``.

    An unknown profile (``--profile`` or ``AWS_PROFILE``) raises ProfileNotFound here; main()
    turns credential problems into one line.
    """
    try:
        import boto3  # only the commands that talk to AWS need it
    except ImportError:
        raise CompileCliError("this command needs boto3: pip install boto3", ExitCode.INPUT) from None
    return boto3.Session(profile_name=args.profile, region_name=region)


# ClientError codes that mean "your credentials", not "AWS is unavailable".
_CREDENTIAL_ERROR_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AuthFailure",
        "SignatureDoesNotMatch",
        "RequestExpired",
    }
)


def _credentials_problem(err: BaseException) -> str | None:
    """One line for an AWS credentials problem the user can fix, else None."""
    if isinstance(err, ProfileNotFound):
        profile = err.kwargs.get("profile", "")
        return (
            f"AWS profile {profile!r} not found (from --profile or AWS_PROFILE); list yours with "
            "'aws configure list-profiles'"
        )
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials: pass --profile NAME, set AWS_PROFILE, or run 'aws configure' / 'aws sso login'"
    if isinstance(err, SSOError | TokenRetrievalError):
        return f"AWS SSO session not usable ({err}); run 'aws sso login'"
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        if code in _CREDENTIAL_ERROR_CODES:
            return f"AWS rejected the credentials ({code}): refresh them ('aws sso login') or pass another --profile"
    return None


def _configured_endpoint(config: PlatformConfig, name: str, *, command: str, source: str) -> ServingSpec | None:
    """The endpoint ``name`` of ``config``; prints the configured names when there is none."""
    spec = config.endpoint(name)
    if spec is None:
        names = ", ".join(e.name for e in config.serving.endpoints) or "none"
        print(f"{command}: {source}: no endpoint {name!r}; configured: {names}", file=sys.stderr)
    return spec


def _compile_status(args: argparse.Namespace) -> int:
    """Where a run is, or how it ended: the ARN names the region, so no config is needed."""
    parts = args.execution.split(":")
    if len(parts) < 8 or parts[:3] != ["arn", parts[1], "states"] or parts[5] != "execution":
        print(
            f"compile status: execution: got {args.execution!r}; allowed: the execution ARN 'compile submit' printed "
            "(arn:aws:states:<region>:<account>:execution:...)",
            file=sys.stderr,
        )
        return ExitCode.INPUT
    sfn = _aws_session(args, parts[3]).client("stepfunctions")
    try:
        execution = sfn.describe_execution(executionArn=args.execution)
    except ClientError as err:
        if _credentials_problem(err) is not None:
            raise
        print(f"compile status: {err}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    step = current_step(sfn, args.execution)
    if execution["status"] == "RUNNING":
        print(f"RUNNING: {step or 'starting'} (since {execution['startDate']})")
        return ExitCode.OK
    code, lines = describe_outcome(execution)
    for line in lines:
        print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _compile(args: argparse.Namespace) -> int:
    if args.action == "status":
        return _compile_status(args)
    source = args.config or DEFAULT_CONFIG
    config = load_config(source)
    if not config.compile.enabled:
        hint = (
            "pass --config with the config you deployed"
            if args.config is None
            else "enable it and deploy the compile stack"
        )
        given = "the default " if args.config is None else ""
        print(f"compile {args.action}: --config: {given}{source} has compile.enabled false; {hint}", file=sys.stderr)
        return ExitCode.INPUT
    endpoint = None
    spec = None
    if args.action == "submit":
        if bool(args.spec) == bool(args.endpoint):
            print("compile submit: give a spec file or --endpoint NAME (one of them)", file=sys.stderr)
            return 2
        if args.endpoint:
            endpoint = _configured_endpoint(config, args.endpoint, command="compile submit", source=source)
            if endpoint is None:
                return 2
        else:
            spec = load_spec(args.spec, compile_machines=config.compile.instance_types)
    try:
        session = _aws_session(args, config.project.region)
        pipeline = find_pipeline(session.client("cloudformation"), compile_stack_name(config.project.name))
        if args.action == "submit":
            served = None
            if endpoint is not None:
                # The endpoint's own compile spec: the artifacts its deployment points at.
                served = config.plan_endpoint(endpoint)
                spec = served.compile_spec()
                where = f"on pool {endpoint.pool}" if served.compile_placement == "cluster" else "on AWS Batch"
                if served.compile_placement == "cluster":
                    check_cluster_compile(
                        session.client("lambda"),
                        config.project.name,
                        serving_stack=serving_stack_name(config.project.name),
                    )
                print(f"endpoint {endpoint.name}: compiling {where} for cache key {spec.cache_key()}")
            assert spec is not None
            account = session.client("sts").get_caller_identity()["Account"]
            check_image_home(spec.image, project=config.project.name, region=config.project.region, account=account)
            tags = image_tags(session.client("ecr"), spec.image)
            toolchain = _compile_toolchain(spec, tags, served)
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
        elif args.action == "list":
            items = list(registry_items(session.client("dynamodb"), pipeline.registry_table))
            lines, code = table_lines(items), 0
        else:
            item = registry_item(session.client("dynamodb"), pipeline.registry_table, args.cache_key)
            lines, code = [json.dumps(item, indent=2, default=str)], 0
    except NeuronStackError as err:
        print(f"compile: {args.spec or args.endpoint}: {err.field}: {err}", file=sys.stderr)
        return 2
    except PlanError as err:  # an endpoint without a pinned compile image
        print(f"compile: {args.endpoint}: {err}", file=sys.stderr)
        return ExitCode.INPUT
    except CompileCliError as err:
        print(f"compile {args.action}: {err}", file=sys.stderr)
        return err.code
    for line in lines:
        print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _compile_toolchain(spec: CompileSpec, tags: list[str], served: ServingPlan | None) -> CompileToolchain:
    """The toolchain of the compile image, from its tags in ECR (compile images carry their
    serving image's tag); an endpoint's pinned image must carry that endpoint's serving tag."""
    if served is not None and served.compile_image_tag not in tags:
        raise NeuronStackError(
            "compile_image",
            f"got {spec.image!r}, tagged {', '.join(tags) or 'nothing'}; endpoint {served.spec.name} serves "
            f"{served.serving_image}: build its compile image (make compile-image) and pin the reference it prints",
        )
    candidates = [served.compile_image_tag] if served is not None else tags
    error: NeuronStackError | None = None
    for tag in candidates:
        try:
            return compile_toolchain(tag, spec.sdk_version)
        except NeuronStackError as err:
            error = error or err
    raise error or NeuronStackError(
        "image", f"got {spec.image!r}; it has no tag in ECR (make compile-image tags it like its serving image)"
    )


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
        field = f"{err.field}: " if isinstance(err, EndpointPoolError) else ""
        print(f"plan: {args.spec or args.endpoint}: {field}{err}", file=sys.stderr)
        return ExitCode.INPUT
    print("\n".join(plan_table(result)))
    return 0


def _load_smoke_client() -> Any:
    """The smoke client lives with the runtime code (runtime_assets/serve); the package ships a
    copy (neuron_platform.assets), so the command works from an installed package too."""
    import importlib.util

    try:
        path = runtime_asset("serve/smoke_client.py")
    except FileNotFoundError as err:
        raise CompileCliError(str(err), ExitCode.INPUT) from None
    spec = importlib.util.spec_from_file_location("neuron_smoke_client", path)
    if spec is None or spec.loader is None:
        raise CompileCliError(f"{path}: cannot load the smoke client", ExitCode.INPUT)
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
        raise CompileCliError(f"kubectl not found to look up the load balancer; {hint}", ExitCode.INPUT)
    jsonpath = "{.status.loadBalancer.ingress[0].hostname}"
    result = subprocess.run(
        [kubectl, "get", "ingress", name, "-n", namespace, "-o", f"jsonpath={jsonpath}"],
        capture_output=True,
        text=True,
        check=False,
    )
    host = result.stdout.strip()
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        said = lines[-1] if lines else f"exit code {result.returncode}"
        raise CompileCliError(f"kubectl could not read ingress {namespace}/{name}: {said}; {hint}")
    if not host:
        raise CompileCliError(f"no load balancer address for ingress {namespace}/{name} yet; {hint}")
    return f"{'https' if https else 'http'}://{host}"


def _endpoint(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    spec = _configured_endpoint(config, args.name, command="endpoint", source=args.config)
    if spec is None:
        return ExitCode.INPUT
    try:
        client = _load_smoke_client()
        if spec.backend == "sagemaker":
            runtime = _aws_session(args, config.project.region).client("sagemaker-runtime")
            endpoint_name = f"{config.project.name}-{spec.name}"
            answer = client.chat_sagemaker(runtime, endpoint_name, spec.name, args.prompt, max_tokens=args.max_tokens)
        else:
            url = args.url or _ingress_url(spec.name, config.serving.namespace, bool(spec.certificate_arn))
            # Every EKS endpoint requires its API key (Secrets Manager, read with your credentials).
            key = endpoint_api_key(_aws_session(args, config.project.region), project=config.project.name, spec=spec)
            answer = client.chat_http(url, spec.name, args.prompt, max_tokens=args.max_tokens, api_key=key)
    except CompileCliError as err:
        print(f"endpoint: {err}", file=sys.stderr)
        return err.code
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
        return ExitCode.INPUT
    pool = config.pool(args.pool)
    assert pool is not None
    stack = config.pool_stack(args.pool)
    role: Role = "serving" if args.check == "inf2" else "training"
    where = f"first-run {args.check}: {args.config}"
    if stack.workload(role) is None:
        print(f"{where}: --pool: {args.pool} is a {stack.purpose} pool; it runs no {role} image", file=sys.stderr)
        return ExitCode.INPUT
    image = stack.image(role)
    if args.check == "inf2":
        if args.instance_type is not None:
            print(f"{where}: --instance-type: applies to efa-pair only", file=sys.stderr)
            return ExitCode.INPUT
        objects = [inf2_smoke_pod(args.pool, image)]
    else:
        if not pool.efa:
            efa_pools = ", ".join(p.name for p in config.efa_training_pools) or "none configured"
            print(
                f"{where}: --pool: {args.pool} has no EFA; allowed: an EFA training pool ({efa_pools})", file=sys.stderr
            )
            return ExitCode.INPUT
        instance_type = args.instance_type or pool.instance_types[0]
        if instance_type not in pool.instance_types:
            print(
                f"{where}: --instance-type: got {instance_type!r}; pool {args.pool} runs "
                f"{', '.join(pool.instance_types)}",
                file=sys.stderr,
            )
            return ExitCode.INPUT
        objects = efa_pair_pods(args.pool, image, instance_type)
    print(yaml.safe_dump_all(objects, sort_keys=False), end="")
    return ExitCode.OK


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


DEFAULT_CONFIG = "config/default.yaml"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is a meaningful one (not None, False or a list)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or isinstance(action.default, list):
            return action.help
        return super()._get_help_string(action)


def _parser(parent: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(
        name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".", formatter_class=_HelpFormatter
    )
    return parser


def _commands(parser: argparse.ArgumentParser, dest: str) -> Any:
    """Subcommands named COMMAND in usage and errors (not the internal attribute name)."""
    return parser.add_subparsers(dest=dest, required=True, metavar="COMMAND", title="commands")


def _config_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE", help=f"the platform config ({what})")


def _profile_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default=None, help="AWS profile (default: AWS_PROFILE or the usual credential chain)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m neuron_platform",
        description=__doc__,
        formatter_class=_HelpFormatter,
        epilog="Exit codes: 0 done, 1 the answer is no (a failed compile, an endpoint error), 2 your input "
        "(config, option, name, AWS profile or credentials), 3 AWS or the cluster gave no answer.",
    )
    groups = _commands(parser, "command")
    config = _parser(groups, "config", "check a platform configuration file")
    actions = _commands(config, "action")
    validate = _parser(actions, "validate", "validate a config file; exit 2 with one line per problem")
    validate.add_argument("path", help="the config YAML file")
    validate.set_defaults(func=_config_validate)
    show = _parser(actions, "show", "print the config with every default filled in (JSON)")
    show.add_argument("path", help="the config YAML file")
    show.set_defaults(func=_config_show)
    offerings = _parser(
        actions,
        "check-offerings",
        "ask EC2 (your credentials) whether each pool's types are offered in its zones; exit 2 if not",
    )
    offerings.add_argument("path", help="the config YAML file")
    _profile_option(offerings)
    offerings.set_defaults(func=_config_check_offerings)

    first_run = _parser(groups, "first-run", "print a first-run check manifest (kubectl apply -f -)")
    first_run.add_argument(
        "check", choices=["inf2", "efa-pair"], help="inf2: one Neuron device; efa-pair: two whole EFA nodes"
    )
    first_run.add_argument("--pool", required=True, help="the pool name from your config")
    _config_option(first_run, "the pool and its images")
    first_run.add_argument(
        "--instance-type", default=None, help="efa-pair: one of the pool's types (default: its first)"
    )
    first_run.set_defaults(func=_first_run)

    matrix = _parser(
        groups, "versions", "print the Neuron matrix: per pool the SDK, AMI, driver and each image with its runtime"
    )
    _config_option(matrix, "its pools and endpoints")
    matrix.add_argument("--pool", default=None, help="with --get: a pool of the config")
    matrix.add_argument("--endpoint", default=None, help="with --get: an endpoint of the config")
    matrix.add_argument(
        "--get",
        default=None,
        metavar="VALUE",
        help="print one value: sdk, ami, driver, serving-image, training-image, compile-image, nxdt-examples-ref "
        "(pools); serving-image, base-image, compile-tag, neuronx-cc, runtime, sdk, engine (endpoints)",
    )
    matrix.set_defaults(func=_versions)

    compile_ = _parser(groups, "compile", "compile a model once and look up compiled artifacts")
    compile_actions = _commands(compile_, "action")
    for name, help_text in (
        ("submit", "validate a spec, start the pipeline, follow it to the end (cache hits end in seconds)"),
        ("status", "where a run is, or how it ended (the ARN names the region: no config needed)"),
        ("list", "registered artifacts, newest first"),
        ("show", "one registry entry with its spec and file hashes"),
    ):
        action = _parser(compile_actions, name, help_text)
        action.add_argument(
            "--config",
            default=None,
            metavar="FILE",
            help="status: not needed"
            if name == "status"
            else f"the config you deployed, with compile.enabled (default: {DEFAULT_CONFIG})",
        )
        _profile_option(action)
        action.set_defaults(func=_compile)
        if name == "submit":
            action.add_argument("spec", nargs="?", help="compile spec YAML (or --endpoint)")
            action.add_argument("--endpoint", default=None, help="compile what this configured endpoint serves")
            action.add_argument("--no-wait", action="store_true", help="print the execution ARN and return")
            action.add_argument("--poll-seconds", type=float, default=15, help="how often to check the run")
        elif name == "status":
            action.add_argument("execution", help="the execution ARN 'compile submit' printed")
        elif name == "show":
            action.add_argument("cache_key", help="a key from 'compile list'")

    planner = _parser(groups, "plan", "derive an endpoint's instance type, placement, compile spec and cost")
    planner.add_argument("spec", nargs="?", help="serving spec YAML (or --config with --endpoint)")
    planner.add_argument(
        "--config", default=None, metavar="FILE", help="platform config: the spec's pool, project name and images"
    )
    planner.add_argument("--endpoint", default=None, help="plan this endpoint of --config")
    planner.add_argument("--project", default="neuron", help="project name for image names without --config")
    planner.set_defaults(func=_plan)

    endpoint = _parser(groups, "endpoint", "talk to a serving endpoint")
    endpoint_actions = _commands(endpoint, "action")
    invoke = _parser(endpoint_actions, "invoke", "send one chat completion (OpenAI API) and print the answer")
    invoke.add_argument("name", help="endpoint name from the config")
    invoke.add_argument("prompt", help="the user message")
    _config_option(invoke, "its endpoints")
    invoke.add_argument("--url", default=None, help="EKS: base URL (default: the Ingress's load balancer)")
    _profile_option(invoke)
    invoke.add_argument("--max-tokens", type=int, default=128, help="completion length limit")
    invoke.set_defaults(func=_endpoint)

    drawing = _parser(groups, "diagram", "print the architecture of a synthesized app as Graphviz DOT")
    drawing.add_argument("assembly", nargs="?", default="cdk.out", help="cdk synth output directory")
    drawing.set_defaults(func=_diagram)

    queues = _parser(groups, "queues", "print the Kueue training queues and their quotas (Markdown)")
    _config_option(queues, "its training pools")
    queues.set_defaults(func=_queues)

    job = _parser(
        groups, "train-job", "print a TrainJob for an EFA pool's runtime and Kueue queue (kubectl apply -f -)"
    )
    job.add_argument("--name", required=True, help="the TrainJob's name (lowercase letters, digits, '-')")
    job.add_argument("--pool", required=True, help="an EFA training pool from your config")
    job.add_argument(
        "--instance-type", default=None, help="checked against the pool (default: the type its runtime runs)"
    )
    job.add_argument("--nodes", type=int, default=2, help="whole nodes, one pod each")
    job.add_argument("--namespace", default=None, help="checked against training.namespace (default: that namespace)")
    job.add_argument(
        "--topology",
        choices=TOPOLOGY_CHOICES,
        default=None,
        help="place the nodes within one network block: required, preferred (default where the pool is "
        "placed by network topology) or none",
    )
    _config_option(job, "the pool and its image")
    job.add_argument("--image", default=None, help="training image with your code (default: the pool's training image)")
    job.add_argument("command", nargs=argparse.REMAINDER, help="-- torchrun <script> <args>")
    job.set_defaults(func=_train_job)
    return parser


def _command_name(args: argparse.Namespace) -> str:
    return " ".join(part for part in (args.command, getattr(args, "action", None)) if isinstance(part, str))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print("\n".join(err.messages()), file=sys.stderr)
        return ExitCode.INPUT
    except NeuronStackError as err:
        print(f"neuron stack error: {err.field}: {err}", file=sys.stderr)
        return ExitCode.INPUT
    except (BotoCoreError, ClientError) as err:
        problem = _credentials_problem(err)
        if problem is not None:
            print(f"{_command_name(args)}: {problem}", file=sys.stderr)
            return ExitCode.INPUT
        print(f"{_command_name(args)}: AWS error: {err}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    except KeyboardInterrupt:
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
