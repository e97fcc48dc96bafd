"""One consistent Neuron stack per pool, derived from the vendored upstream data.

Plain Python (no CDK). A pool names at most its Neuron SDK release (``neuron_sdk``);
everything else follows from :mod:`neuron_platform.neuron_data`, never typed twice:

- the workload images: the newest published image of the pool's workload repository
  (vLLM for inference pools, the PyTorch training DLC for training pools) built on that
  SDK, tagged for the pool's family and not excluded by a support rule (NxD Inference on
  inf2/trn1 after SDK 2.28). The compile image of an inference pool is its serving image.
- the AMI release: the newest EKS AL2023 Neuron AMI for the cluster's Kubernetes minor
  whose driver breaks none of the pool's runtimes under the documented rules.
- the NxD Training examples commit: the release of ``neuronx_distributed_training`` that
  the SDK ships, found in the NxD Training repository's history.

Without ``neuron_sdk`` a pool gets the newest SDK that has a supported image for its
family and workload. Problems raise :class:`NeuronStackError` with the config field and
one line that says the value, why, and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from neuron_platform import versions
from neuron_platform.facts import CompileTarget, Family
from neuron_platform.neuron_data import (
    AMI_FILE,
    NXDI_PACKAGE,
    AmiRelease,
    ContainerImage,
    NeuronData,
    NxdtRelease,
    SdkRelease,
    UnknownNeuronData,
    load,
    manifest_family,
    newest,
    rules_text,
    version_key,
)

Role = Literal["serving", "training", "compile"]
Purpose = Literal["training", "inference"]

# What runs on a pool of each purpose. Compile jobs run on Batch, not on the pool, but
# in the pool's serving image: artifacts load only under the SDK that compiled them.
PURPOSE_ROLES: dict[str, tuple[Role, ...]] = {"inference": ("serving", "compile"), "training": ("training",)}
ROLE_REPOSITORY: dict[Role, str] = {
    "serving": versions.SERVING_IMAGE_REPOSITORY,
    "compile": versions.SERVING_IMAGE_REPOSITORY,
    "training": versions.TRAINING_IMAGE_REPOSITORY,
}
# A compile target's family for image support (inf2 and trn1/trn1n share NeuronCore-v2).
TARGET_FAMILY = {CompileTarget.INF2: Family.INF2, CompileTarget.TRN1: Family.TRN1, CompileTarget.TRN2: Family.TRN2}


class NeuronStackError(ValueError):
    """A Neuron stack the data says will not run. ``field``: the config key to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class WorkloadImage:
    """A container that runs on (or for) a pool, with the Neuron runtime it carries."""

    role: Role
    image: ContainerImage
    runtime: str

    @property
    def uri(self) -> str:
        return self.image.uri


@dataclass(frozen=True)
class PoolStack:
    """The resolved Neuron stack of one pool."""

    pool: str
    family: Family
    purpose: str
    kubernetes: str
    sdk: SdkRelease
    ami: AmiRelease
    workloads: tuple[WorkloadImage, ...]
    nxdt_version: str | None
    nxdt_examples: NxdtRelease | None

    def workload(self, role: Role) -> WorkloadImage | None:
        return next((w for w in self.workloads if w.role == role), None)

    def image(self, role: Role) -> str:
        found = self.workload(role)
        if found is None:
            roles = ", ".join(w.role for w in self.workloads)
            raise NeuronStackError("purpose", f"pool {self.pool} ({self.purpose}) runs {roles}, not {role}")
        return found.uri

    @property
    def ami_alias(self) -> str:
        return self.ami.alias


def supported_images(data: NeuronData, role: Role, family: Family, sdk: str | None = None) -> list[ContainerImage]:
    """Published images for ``role`` on ``family`` (at ``sdk`` if given) with no support problem."""
    found = [
        i
        for i in data.images_in(ROLE_REPOSITORY[role])
        if (sdk is None or i.sdk == sdk) and not data.image_problems(i, family)
    ]
    return sorted(found, key=lambda i: (version_key(i.sdk), i.framework_version), reverse=True)


def supported_sdks(data: NeuronData, roles: Sequence[Role], family: Family) -> list[str]:
    """SDK releases (newest first) with a supported image for every role on ``family``."""
    per_role = [{i.sdk for i in supported_images(data, role, family)} for role in roles]
    common = set.intersection(*per_role) if per_role else set()
    return sorted((s for s in common if s in data.releases), key=version_key, reverse=True)


def default_sdk(family: Family, purpose: str, data: NeuronData | None = None) -> str:
    """The newest SDK release that officially supports ``family`` for the pool's workloads."""
    data = data or load()
    sdks = supported_sdks(data, PURPOSE_ROLES[purpose], family)
    if not sdks:
        raise NeuronStackError("instance_types", f"no Neuron SDK release in the data has {purpose} images for {family}")
    return sdks[0]


def ami_problems(data: NeuronData, ami: AmiRelease, runtimes: Sequence[WorkloadImage], family: Family) -> list[str]:
    """Why the AMI's driver breaks one of the runtimes (empty: no documented incompatibility)."""
    problems: list[str] = []
    for workload in runtimes:
        broken = data.driver_problems(runtime=workload.runtime, driver=ami.driver, family=family)
        if broken:
            problems.append(
                f"its Neuron driver {ami.driver} breaks runtime {workload.runtime} of the {workload.role} image "
                f"{workload.image.tag} ({rules_text(broken)})"
            )
    return problems


def resolve_pool(
    *,
    name: str,
    family: Family,
    purpose: str,
    sdk: str | None = None,
    ami_release: str | None = None,
    kubernetes: str = versions.KUBERNETES_VERSION,
    data: NeuronData | None = None,
) -> PoolStack:
    """The pool's Neuron stack, or :class:`NeuronStackError` naming the field to change."""
    data = data or load()
    roles = PURPOSE_ROLES[purpose]
    chosen = sdk or default_sdk(family, purpose, data)
    try:
        release = data.release(chosen)
    except UnknownNeuronData as err:
        raise NeuronStackError("neuron_sdk", f"got {chosen!r}; {err}") from None
    if not release.supports(family):
        raise NeuronStackError("neuron_sdk", f"got {chosen!r}; Neuron SDK {chosen}'s runtime does not support {family}")
    workloads: list[WorkloadImage] = []
    for role in roles:
        images = supported_images(data, role, family, chosen)
        if not images:
            why = _unsupported_reason(data, role, family, chosen)
            allowed = ", ".join(supported_sdks(data, roles, family)[:8]) or "none"
            raise NeuronStackError(
                "neuron_sdk",
                f"got {chosen!r}; no {ROLE_REPOSITORY[role]} image is published and supported for {family} at "
                f"Neuron SDK {chosen}{why}; allowed: {allowed}",
            )
        workloads.append(WorkloadImage(role, images[0], data.image_runtime(images[0])))
    candidates = data.amis_for(kubernetes)
    if not candidates:
        raise NeuronStackError(
            "ami_release", f"{AMI_FILE} has no AMI release for Kubernetes {kubernetes}; add its rows first"
        )
    if ami_release is not None:
        try:
            ami = data.ami(ami_release, kubernetes)
        except UnknownNeuronData as err:
            raise NeuronStackError("ami_release", f"got {ami_release!r}; {err}") from None
        problems = ami_problems(data, ami, workloads, family)
        if problems:
            fine = [a.release for a in candidates if not ami_problems(data, a, workloads, family)]
            raise NeuronStackError(
                "ami_release",
                f"got {ami_release!r}; {problems[0]}; allowed: {', '.join(fine[:6]) or 'none in the data'}",
            )
    else:
        fitting = [a for a in candidates if not ami_problems(data, a, workloads, family)]
        if not fitting:
            reason = ami_problems(data, candidates[0], workloads, family)[0]
            raise NeuronStackError(
                "neuron_sdk",
                f"got {chosen!r}; no AMI release for Kubernetes {kubernetes} in {AMI_FILE} runs it: the newest, "
                f"{candidates[0].release}: {reason}",
            )
        ami = fitting[0]
    nxdt_version, nxdt_examples = data.nxdt_examples(chosen) if "training" in roles else (None, None)
    return PoolStack(
        pool=name,
        family=family,
        purpose=purpose,
        kubernetes=kubernetes,
        sdk=release,
        ami=ami,
        workloads=tuple(workloads),
        nxdt_version=nxdt_version,
        nxdt_examples=nxdt_examples,
    )


def _unsupported_reason(data: NeuronData, role: Role, family: Family, sdk: str) -> str:
    """Why published images of ``sdk`` do not count (the support rule they break), if any."""
    published = [i for i in data.images_in(ROLE_REPOSITORY[role]) if i.sdk == sdk]
    tagged = [i for i in published if manifest_family(family) in i.families]
    # A rule that excludes an image tagged for the family says more than a missing tag.
    reasons = [p for i in tagged for p in data.image_problems(i, family)]
    if reasons:
        return f" ({reasons[0]})"
    families = sorted({f for i in published for f in i.families})
    return f" (published for {', '.join(families)})" if families else ""


@dataclass(frozen=True)
class EndpointStack:
    """A SageMaker endpoint's image (SageMaker runs the hosts, so no AMI or driver choice)."""

    image: ContainerImage
    runtime: str
    compiler: str

    @property
    def sdk(self) -> str:
        return self.image.sdk

    def uri(self, region: str) -> str:
        return f"{versions.DLC_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{self.image.uri}"


def resolve_sagemaker(target: CompileTarget, sdk: str | None = None, data: NeuronData | None = None) -> EndpointStack:
    """The SageMaker serving image for ``target`` (at ``sdk``, or the newest supported)."""
    data = data or load()
    family = TARGET_FAMILY[target]
    images = [
        i
        for i in data.images_in(versions.SAGEMAKER_SERVING_IMAGE_REPOSITORY)
        if not data.image_problems(i, family) and (sdk is None or i.sdk == sdk)
    ]
    image = newest(images)
    if image is None:
        published = sorted(
            {
                i.sdk
                for i in data.images_in(versions.SAGEMAKER_SERVING_IMAGE_REPOSITORY)
                if not data.image_problems(i, family)
            },
            key=version_key,
            reverse=True,
        )
        raise NeuronStackError(
            "neuron_sdk",
            f"got {sdk!r}; no {versions.SAGEMAKER_SERVING_IMAGE_REPOSITORY} image is published for {target} at that "
            f"SDK; allowed: {', '.join(published) or 'none'}",
        )
    release = data.release(image.sdk)
    return EndpointStack(image=image, runtime=release.runtime, compiler=release.compiler)


# --- serving engines ------------------------------------------------------------------

Engine = Literal["vllm-nxdi", "vllm-neuron", "optimum-neuron"]
Placement = Literal["cluster", "batch"]

# Where an engine's artifacts compile. vLLM (both engines) compiles by running the engine:
# the NxD Inference plugin registers its platform only when a Neuron device is present, so
# its artifacts compile on the endpoint's own pool, in the serving image, on the AMI the
# data resolved for that pool. (vllm-neuron documents a CPU compile mode for SDK 2.32, but
# its switches changed names between releases; the serving hardware needs none.)
# optimum-neuron exports on a CPU-only machine with --instance_type (its export guide).
COMPILE_PLACEMENT: dict[Engine, Placement] = {
    "vllm-nxdi": "cluster",
    "vllm-neuron": "cluster",
    "optimum-neuron": "batch",
}


def serving_engine(image: ContainerImage) -> Engine:
    """Which engine a serving image runs, from the packages the data lists for it."""
    if image.has_package("optimum-neuron"):
        return "optimum-neuron"
    if image.has_package("vllm-neuron"):
        return "vllm-neuron"
    if image.has_package("vllm-neuronx") or image.has_package(NXDI_PACKAGE):
        return "vllm-nxdi"
    raise NeuronStackError("neuron_sdk", f"{image.uri} carries no serving engine this platform knows")


@dataclass(frozen=True)
class CompileToolchain:
    """What compiles a spec: the engine of its image and the compiler/runtime its SDK ships."""

    image: ContainerImage
    engine: Engine
    release: SdkRelease

    def as_input(self) -> dict[str, str]:
        """The pipeline's ``neuron`` input (checked by the Validate step, passed to the job)."""
        return {"engine": self.engine, "neuronxCc": self.release.compiler, "runtime": self.release.runtime}


def compile_toolchain(image_tag: str, sdk: str, data: NeuronData | None = None) -> CompileToolchain:
    """The toolchain a compile image tagged ``image_tag`` carries; its SDK must be ``sdk``.

    Compile images carry their serving image's tag, so the tag finds the published image.
    """
    data = data or load()
    images = [i for i in data.images_by_tag(image_tag) if serving_repository(i)]
    if not images:
        raise NeuronStackError(
            "image",
            f"got tag {image_tag!r}; a compile image carries the tag of a published Neuron serving image "
            f"({versions.SERVING_IMAGE_REPOSITORY} or {versions.SAGEMAKER_SERVING_IMAGE_REPOSITORY} in the data)",
        )
    image = images[0]
    if image.sdk != sdk:
        raise NeuronStackError(
            "sdk_version", f"got {sdk!r}; image tag {image_tag} is Neuron SDK {image.sdk}; allowed: {image.sdk}"
        )
    try:
        release = data.release(sdk)
    except UnknownNeuronData as err:
        raise NeuronStackError("sdk_version", f"got {sdk!r}; {err}") from None
    return CompileToolchain(image=image, engine=serving_engine(image), release=release)


def serving_repository(image: ContainerImage) -> bool:
    return image.repository in (versions.SERVING_IMAGE_REPOSITORY, versions.SAGEMAKER_SERVING_IMAGE_REPOSITORY)
