"""What upstream says about the Neuron software stack, read from the vendored files.

Plain Python (no CDK). Every answer comes from a file in ``data/neuron/`` copied
unmodified from its upstream repository (see ``data/neuron/SOURCE.txt``):

- ``n2-manifest.json`` (aws-neuron/aws-neuron-sdk): per Neuron SDK release, the driver
  (``aws-neuronx-dkms``), runtime (``aws-neuronx-runtime-lib``), compiler (``neuronx-cc``)
  and libraries it ships, with the instance families each supports.
- ``neuron-dlc-images.md`` (aws-neuron/deep-learning-containers): every published Neuron
  container image with its SDK release, instance families and Neuron packages.
- ``eks-al2023-neuron-ami-drivers.csv`` (extracted from awslabs/amazon-eks-ami CHANGELOG):
  the driver each EKS AL2023 Neuron AMI release carries, per Kubernetes minor.
- ``runtime-release-notes.rst`` and ``nxd-inference-release-notes.rst``: the compatibility
  rules, parsed from their own sentences so each rule cites its file and line.
- ``nxdt-release-commits.csv`` (extracted from aws-neuron/neuronx-distributed-training):
  the commit of each NxD Training release, for its examples.
- ``dlc-data/<repository>/<version>.yml`` (aws/deep-learning-containers docs/src/data): the
  Hugging Face Neuron serving images SageMaker hosts, with the SDK each is built on.

Nothing here is typed twice: when a newer AMI, SDK or image is wanted, its upstream file
(or a new row with its source) goes into ``data/neuron/`` first.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from neuron_platform.facts import Family

DATA_DIR = Path(__file__).resolve().parent / "data" / "neuron"
REPOSITORY_DATA_DIR = "constructs/src/neuron_platform/data/neuron/"
MANIFEST_FILE = "n2-manifest.json"
DLC_FILE = "neuron-dlc-images.md"
AMI_FILE = "eks-al2023-neuron-ami-drivers.csv"
RUNTIME_NOTES_FILE = "runtime-release-notes.rst"
NXDI_NOTES_FILE = "nxd-inference-release-notes.rst"
NXDT_FILE = "nxdt-release-commits.csv"
SAGEMAKER_DIR = "dlc-data"

DRIVER_PACKAGE = "aws-neuronx-dkms"
RUNTIME_PACKAGE = "aws-neuronx-runtime-lib"
COMPILER_PACKAGE = "neuronx-cc"
NXDI_PACKAGE = "neuronx_distributed_inference"
NXDT_PACKAGE = "neuronx_distributed_training"
NXDT_REPOSITORY = "https://github.com/aws-neuron/neuronx-distributed-training.git"

# Where each piece of data comes from, for "add it" messages.
UPSTREAM = {
    MANIFEST_FILE: "aws-neuron/aws-neuron-sdk src/helperscripts/n2-manifest.json",
    DLC_FILE: "aws-neuron/deep-learning-containers README.md",
    AMI_FILE: "the 'AMI Release vYYYYMMDD' section of awslabs/amazon-eks-ami CHANGELOG.md",
    NXDT_FILE: "aws-neuron/neuronx-distributed-training (the release commit of src/neuronx_distributed_training/_version.py)",
    SAGEMAKER_DIR: "aws/deep-learning-containers docs/src/data/<repository>/<version>.yml",
}


class UnknownNeuronData(ValueError):
    """A release, AMI or image that the vendored data does not list (the message says what to add)."""


def version_key(version: str) -> tuple[int, ...]:
    """``2.29.0.0`` / ``v2.29`` / ``2.9.0.2.15.32035+abc`` -> a tuple that orders releases."""
    parts = re.split(r"[.\-]", version.lstrip("v").split("+")[0])
    return tuple(int(p) if p.isdigit() else 0 for p in parts)


def minor_at_least(version: str, minimum: str) -> bool:
    """True when ``version`` is ``minimum`` or newer, compared on as many fields as ``minimum`` gives."""
    want = version_key(minimum)
    return version_key(version)[: len(want)] >= want


def manifest_family(family: Family) -> str:
    """The instance name the Neuron manifest and the DLC table use (trn1n is listed as trn1)."""
    return "trn1" if family is Family.TRN1N else family.value


# --- the records ----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceLine:
    """Where a rule was read: file and line of the vendored copy, and the sentence."""

    file: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text}"


@dataclass(frozen=True)
class PackageVersion:
    name: str
    version: str
    instances: tuple[str, ...]


@dataclass(frozen=True)
class SdkRelease:
    """One Neuron SDK release as the manifest lists it."""

    version: str
    packages: tuple[PackageVersion, ...]

    def package(self, name: str) -> str | None:
        found = [p.version for p in self.packages if p.name == name]
        return max(found, key=version_key) if found else None

    def _required(self, name: str) -> str:
        value = self.package(name)
        if value is None:
            raise UnknownNeuronData(f"Neuron SDK {self.version} lists no {name} in {MANIFEST_FILE}")
        return value

    @property
    def driver(self) -> str:
        return self._required(DRIVER_PACKAGE)

    @property
    def runtime(self) -> str:
        return self._required(RUNTIME_PACKAGE)

    @property
    def compiler(self) -> str:
        return self._required(COMPILER_PACKAGE)

    def supports(self, family: Family) -> bool:
        """The release's runtime supports the family (the manifest's supported_instances)."""
        runtime = [p for p in self.packages if p.name == RUNTIME_PACKAGE]
        return any(manifest_family(family) in p.instances for p in runtime)


@dataclass(frozen=True)
class AmiRelease:
    """One EKS AL2023 Neuron AMI release for one Kubernetes minor."""

    release: str
    kubernetes: str
    release_version: str
    driver: str
    efa: str

    @property
    def alias(self) -> str:
        """Karpenter's ``amiSelectorTerms`` alias; it picks the Neuron variant for inf/trn types."""
        return f"al2023@{self.release}"


@dataclass(frozen=True)
class ContainerImage:
    """A published Neuron container image."""

    repository: str
    uri: str
    framework: str
    sdk: str
    families: tuple[str, ...]
    packages: tuple[str, ...]
    python: str
    source: str

    @property
    def tag(self) -> str:
        return self.uri.rpartition(":")[2]

    @property
    def framework_version(self) -> tuple[int, ...]:
        match = re.search(r"(\d+(?:\.\d+)*)", self.framework)
        return version_key(match.group(1)) if match else ()

    def has_package(self, name: str) -> bool:
        normal = name.replace("-", "_").lower()
        return any(p.replace("-", "_").lower() == normal for p in self.packages)


@dataclass(frozen=True)
class DriverRule:
    """A documented driver/runtime incompatibility.

    ``driver_from``/``runtime_below``: drivers this new or newer break runtimes older than
    ``runtime_below``. ``runtime_from``/``driver_below``: runtimes this new or newer need a
    driver of at least ``driver_below``. ``families`` limits the rule (empty: every family).
    """

    source: SourceLine
    driver_from: str | None = None
    runtime_below: str | None = None
    runtime_from: str | None = None
    driver_below: str | None = None
    families: tuple[str, ...] = ()

    def violated(self, *, runtime: str, driver: str, family: Family) -> bool:
        if self.families and manifest_family(family) not in self.families:
            return False
        if self.driver_from and self.runtime_below:
            return minor_at_least(driver, self.driver_from) and not minor_at_least(runtime, self.runtime_below)
        if self.runtime_from and self.driver_below:
            return minor_at_least(runtime, self.runtime_from) and not minor_at_least(driver, self.driver_below)
        return False


@dataclass(frozen=True)
class FamilySupportRule:
    """From a release on, images built on ``package`` are unsupported on ``families``."""

    source: SourceLine
    package: str
    sdk_from: str
    families: tuple[str, ...]
    last_supported: str

    def violated(self, image: ContainerImage, family: Family) -> bool:
        return (
            manifest_family(family) in self.families
            and image.has_package(self.package)
            and minor_at_least(image.sdk, self.sdk_from)
        )


@dataclass(frozen=True)
class NxdtRelease:
    version: str
    commit: str
    date: str


@dataclass(frozen=True)
class NeuronData:
    """Everything the vendored files say, indexed for the questions the platform asks."""

    directory: Path
    releases: dict[str, SdkRelease]
    amis: tuple[AmiRelease, ...]
    images: tuple[ContainerImage, ...]
    driver_rules: tuple[DriverRule, ...]
    family_rules: tuple[FamilySupportRule, ...]
    nxdt_releases: dict[str, NxdtRelease] = field(default_factory=dict)

    @property
    def location(self) -> str:
        """Where the data lives, as a contributor would find it."""
        return REPOSITORY_DATA_DIR if self.directory == DATA_DIR else str(self.directory)

    # -- releases --------------------------------------------------------------------
    def release(self, version: str) -> SdkRelease:
        try:
            return self.releases[version]
        except KeyError:
            newest = ", ".join(sorted(self.releases, key=version_key, reverse=True)[:6])
            raise UnknownNeuronData(
                f"Neuron SDK {version} is not in {MANIFEST_FILE} (newest known: {newest}); add the release's "
                f"manifest from {UPSTREAM[MANIFEST_FILE]} to {self.location} with its SOURCE.txt entry"
            ) from None

    # -- AMIs ------------------------------------------------------------------------
    def amis_for(self, kubernetes: str) -> list[AmiRelease]:
        """AMI releases for one Kubernetes minor, newest first."""
        found = [a for a in self.amis if a.kubernetes == kubernetes]
        return sorted(found, key=lambda a: a.release, reverse=True)

    def ami(self, release: str, kubernetes: str) -> AmiRelease:
        """The AMI release (``v20260714``) for the Kubernetes minor."""
        for ami in self.amis_for(kubernetes):
            if ami.release == release:
                return ami
        known = ", ".join(a.release for a in self.amis_for(kubernetes)[:6]) or "none"
        raise UnknownNeuronData(
            f"AMI release {release} for Kubernetes {kubernetes} is not in {AMI_FILE} (newest known: {known}); "
            f"add its row to {self.location}{AMI_FILE} from {UPSTREAM[AMI_FILE]} with the aws-neuronx-dkms "
            "version it lists"
        )

    # -- images ----------------------------------------------------------------------
    def image(self, uri: str) -> ContainerImage:
        for image in self.images:
            if image.uri == uri:
                return image
        raise UnknownNeuronData(
            f"image {uri} is not in {DLC_FILE} or {SAGEMAKER_DIR}/; add the published image to {self.location} "
            f"from {UPSTREAM[DLC_FILE]} (SageMaker images: {UPSTREAM[SAGEMAKER_DIR]}) first"
        )

    def images_by_tag(self, tag: str) -> list[ContainerImage]:
        return [i for i in self.images if i.tag == tag]

    def images_in(self, repository: str) -> list[ContainerImage]:
        return [i for i in self.images if i.repository == repository]

    # -- rules -----------------------------------------------------------------------
    def driver_problems(self, *, runtime: str, driver: str, family: Family) -> list[DriverRule]:
        """The documented rules a runtime on a driver breaks (empty: no known incompatibility)."""
        return [r for r in self.driver_rules if r.violated(runtime=runtime, driver=driver, family=family)]

    def image_problems(self, image: ContainerImage, family: Family) -> list[str]:
        """Why ``image`` is not a supported choice on ``family`` (empty: published and supported)."""
        problems: list[str] = []
        if manifest_family(family) not in image.families:
            problems.append(f"{image.uri} is published for {', '.join(image.families)}, not {family}")
        for rule in self.family_rules:
            if rule.violated(image, family):
                problems.append(
                    f"{image.uri} runs {rule.package} from SDK {image.sdk}, unsupported on {family} from SDK "
                    f"{rule.sdk_from} ({rule.source})"
                )
        return problems

    def image_runtime(self, image: ContainerImage) -> str:
        """The Neuron runtime an image carries: the runtime of its SDK release."""
        return self.release(image.sdk).runtime

    def nxdt_examples(self, sdk: str) -> tuple[str | None, NxdtRelease | None]:
        """The NxD Training release an SDK ships, and that release's commit if the data has it."""
        version = self.release(sdk).package(NXDT_PACKAGE)
        return version, (self.nxdt_releases.get(version) if version else None)


# --- parsing ------------------------------------------------------------------------


def _parse_manifest(path: Path) -> dict[str, SdkRelease]:
    data = json.loads(path.read_text())
    releases: dict[str, SdkRelease] = {}
    for entry in data["neuron_releases"]:
        packages = tuple(
            PackageVersion(p["name"], p["version"], tuple(p.get("supported_instances", ()))) for p in entry["packages"]
        )
        releases[entry["neuron_version"]] = SdkRelease(entry["neuron_version"], packages)
    return releases


def _parse_amis(path: Path) -> tuple[AmiRelease, ...]:
    with path.open(newline="") as handle:
        return tuple(
            AmiRelease(
                release=row["ami_release"],
                kubernetes=row["kubernetes"],
                release_version=row["release_version"],
                driver=row["aws_neuronx_dkms"],
                efa=row["efa"],
            )
            for row in csv.DictReader(handle)
        )


_LINK = re.compile(r"^\[([^\]]+)\]\(([^)]+)\)$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _parse_dlc_table(path: Path) -> tuple[ContainerImage, ...]:
    """Every row of every ``### <repository>`` table in the DLC README."""
    images: list[ContainerImage] = []
    repository: str | None = None
    header: list[str] | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("### "):
            repository, header = line[4:].strip(), None
            continue
        if repository is None or not line.startswith("|"):
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(line) <= set("|-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        uri = row.get("ecr public url", "")
        sdk = re.search(r"(\d+\.\d+\.\d+)", row.get("neuron sdk version", ""))
        if not uri or not sdk:
            continue
        link = _LINK.match(row.get("framework", ""))
        images.append(
            ContainerImage(
                repository=uri.rpartition(":")[0].rpartition("/")[2],
                uri=uri,
                framework=link.group(1) if link else row.get("framework", ""),
                sdk=sdk.group(1),
                families=tuple(f.strip() for f in row.get("supported ec2 instance types", "").split(",") if f.strip()),
                packages=tuple(p.strip() for p in row.get("neuron packages", "").split(",") if p.strip()),
                python=row.get("python version options", ""),
                source=f"{DLC_FILE}:{number}",
            )
        )
    return tuple(images)


def _parse_sagemaker_images(directory: Path, releases: dict[str, SdkRelease]) -> tuple[ContainerImage, ...]:
    """The SageMaker Neuron images of aws/deep-learning-containers' image data (one YAML per image).

    The YAML names the SDK but not the instance families: those are the families the SDK's
    runtime supports in the manifest. ``uri`` is ``repository:tag`` (the registry is per region).
    """
    images: list[ContainerImage] = []
    for path in sorted(directory.glob("*/*.yml")):
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or data.get("platform") != "sagemaker":
            continue
        sdk = str(data.get("sdk", ""))
        release = releases.get(sdk)
        runtime = [p for p in release.packages if p.name == RUNTIME_PACKAGE] if release else []
        families = tuple(sorted({i for p in runtime for i in p.instances}))
        packages = tuple(f"{name} {data[name]}" for name in ("optimum",) if name in data)
        repository = path.parent.name
        for tag in data.get("tags") or []:
            images.append(
                ContainerImage(
                    repository=repository,
                    uri=f"{repository}:{tag}",
                    framework=f"{data.get('framework', '')} {data.get('version', '')}".strip(),
                    sdk=sdk,
                    families=families,
                    packages=("optimum-neuron", *packages),
                    python=str(data.get("python", "")),
                    source=f"{directory.name}/{repository}/{path.name}",
                )
            )
    return tuple(images)


_RULE_DRIVER_NEEDS_RUNTIME = re.compile(
    r"Neuron Driver (?P<driver>\d+\.\d+) requires Neuron Runtime Library (?P<runtime>\d+\.\d+) or later"
)
_RULE_RUNTIME_NEEDS_DRIVER = re.compile(
    r"Neuron Runtime Library (?P<runtime>\d+\.\d+) is not backward-compatible with Neuron Driver "
    r"(?P<driver>\d+\.\d+) or earlier"
)
_RULE_RUNTIME_NEEDS_DKMS = re.compile(
    r"runtime requires `aws-neuron-dkms` version `(?P<driver>\d+\.\d+)` or later on \*\*(?P<family>\w+)\*\*"
)
_VERSION_LINE = re.compile(r"^\*\*Version:\*\*\s*(?P<version>\d+(?:\.\d+)*)")
_FAMILY_NAMES = {"trainium2": "trn2", "trainium": "trn1", "inferentia2": "inf2"}


def _next_minor(version: str) -> str:
    major, minor = version_key(version)[:2]
    return f"{major}.{minor + 1}"


def _parse_runtime_rules(path: Path) -> tuple[DriverRule, ...]:
    rules: list[DriverRule] = []
    component: str | None = None
    runtime_version: str | None = None
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        # Section headings: a title line followed by a ~~~ underline.
        if number < len(lines) and set(lines[number].strip()) == {"~"} and stripped:
            component = stripped
        version = _VERSION_LINE.match(stripped)
        if version and component == "Neuron Runtime Library":
            runtime_version = version.group("version")
        text = stripped.lstrip("* ").strip()
        if match := _RULE_DRIVER_NEEDS_RUNTIME.search(text):
            rules.append(
                DriverRule(
                    SourceLine(path.name, number, match.group(0)),
                    driver_from=match.group("driver"),
                    runtime_below=match.group("runtime"),
                )
            )
        elif match := _RULE_RUNTIME_NEEDS_DRIVER.search(text):
            rules.append(
                DriverRule(
                    SourceLine(path.name, number, match.group(0)),
                    runtime_from=match.group("runtime"),
                    driver_below=_next_minor(match.group("driver")),
                )
            )
        elif (match := _RULE_RUNTIME_NEEDS_DKMS.search(text)) and runtime_version:
            family = _FAMILY_NAMES.get(match.group("family").lower(), match.group("family").lower())
            rules.append(
                DriverRule(
                    SourceLine(path.name, number, f"runtime {runtime_version}: {match.group(0)}"),
                    runtime_from=runtime_version,
                    driver_below=match.group("driver"),
                    families=(family,),
                )
            )
    return tuple(rules)


_NXDI_SECTION = re.compile(r"\(Neuron (?P<sdk>\d+\.\d+\.\d+) Release\)")
_RULE_NXDI_FAMILIES = re.compile(
    r"NxD Inference models are now only supported on (?P<supported>\w+) and newer hardware\. Customers who require "
    r"NxD Inference [\w ]*support on (?P<first>\w+) or (?P<second>\w+) instances should pin to release "
    r"(?P<pin>\d+\.\d+)"
)


def _parse_nxdi_rules(path: Path) -> tuple[FamilySupportRule, ...]:
    rules: list[FamilySupportRule] = []
    sdk: str | None = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if section := _NXDI_SECTION.search(line):
            sdk = section.group("sdk")
        match = _RULE_NXDI_FAMILIES.search(line)
        if match and sdk:
            rules.append(
                FamilySupportRule(
                    SourceLine(path.name, number, match.group(0)),
                    package=NXDI_PACKAGE,
                    sdk_from=sdk,
                    families=(match.group("first").lower(), match.group("second").lower()),
                    last_supported=match.group("pin"),
                )
            )
    return tuple(rules)


def _parse_nxdt(path: Path) -> dict[str, NxdtRelease]:
    with path.open(newline="") as handle:
        return {
            row["nxdt_version"]: NxdtRelease(row["nxdt_version"], row["commit"], row["commit_date"])
            for row in csv.DictReader(handle)
        }


def parse(directory: Path) -> NeuronData:
    """Read every vendored file in ``directory``."""
    releases = _parse_manifest(directory / MANIFEST_FILE)
    return NeuronData(
        directory=directory,
        releases=releases,
        amis=_parse_amis(directory / AMI_FILE),
        images=_parse_dlc_table(directory / DLC_FILE) + _parse_sagemaker_images(directory / SAGEMAKER_DIR, releases),
        driver_rules=_parse_runtime_rules(directory / RUNTIME_NOTES_FILE),
        family_rules=_parse_nxdi_rules(directory / NXDI_NOTES_FILE),
        nxdt_releases=_parse_nxdt(directory / NXDT_FILE),
    )


@cache
def load() -> NeuronData:
    """The platform's vendored data (parsed once per process)."""
    return parse(DATA_DIR)


def newest(images: Iterable[ContainerImage]) -> ContainerImage | None:
    """The image with the newest SDK, then the newest framework."""
    return max(images, key=lambda i: (version_key(i.sdk), i.framework_version), default=None)


def rules_text(rules: Sequence[DriverRule]) -> str:
    return "; ".join(str(r.source) for r in rules)
