"""The collector's scrape configuration, the alert rules and the alert manager routing."""

from __future__ import annotations

import re

import pytest
import yaml

from neuron_platform.k8s.helm_values import node_problem_detector_command
from neuron_platform.k8s.neuron_monitor import UPSTREAM_MANIFEST, neuron_monitor_port, upstream_daemonset
from neuron_platform.k8s.serving import COMPONENT_LABEL
from neuron_platform.operations import grafana_dashboard
from neuron_platform.operations.prometheus_config import (
    KARPENTER_METRICS,
    NEURON_METRICS,
    NEURON_MONITOR_CONTAINER,
    NEURON_MONITOR_PORT,
    NODE_PROBLEM_DETECTOR_PORT,
    NODE_PROBLEM_METRICS,
    SCHEDULER_METRICS,
    VLLM_METRICS,
    AlertThresholds,
    alert_list,
    alert_rules,
    alertmanager_definition,
    scrape_config,
    to_yaml,
)
from tests.helm_render import CHARTS

KEPT = NEURON_METRICS + NODE_PROBLEM_METRICS + KARPENTER_METRICS + VLLM_METRICS + SCHEDULER_METRICS
# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "by", "avg", "max", "count", "increase", "rate", "histogram_quantile", "or", "vector", "le",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside label matchers, ranges and groupings."""
    without_labels = re.sub(r"\{[^}]*\}", "{}", expr)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_groupings = re.sub(r"by \([^)]*\)", "", without_ranges)
    names = set(re.findall(r"(?<![0-9.])[a-zA-Z_:][a-zA-Z0-9_:]*", without_groupings))
    return names - PROMQL_WORDS


def is_kept(name: str) -> bool:
    return any(re.fullmatch(pattern, name) for pattern in KEPT)


def job(name: str) -> dict:
    (found,) = [j for j in scrape_config(cluster_name="c")["scrape_configs"] if j["job_name"] == name]
    return found


def test_scrape_interval_has_the_collector_floor() -> None:
    assert scrape_config(cluster_name="c", interval_seconds=30)["global"]["scrape_interval"] == "30s"
    with pytest.raises(ValueError, match="at least 30 s"):
        scrape_config(cluster_name="c", interval_seconds=15)


def test_neuron_monitor_job_matches_the_daemonset_the_sdk_ships() -> None:
    keep = job("neuron-monitor")["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["regex"] == f"neuron-monitor;{NEURON_MONITOR_PORT}"
    (container,) = upstream_daemonset()["spec"]["template"]["spec"]["containers"]
    assert (container["name"], neuron_monitor_port()) == (NEURON_MONITOR_CONTAINER, NEURON_MONITOR_PORT)


def test_node_problem_detector_keeps_the_charts_watchdog_and_opens_its_exporter() -> None:
    keep = job("node-problem-detector")["relabel_configs"][0]
    assert keep["regex"] == f"node-problem-detector;{NODE_PROBLEM_DETECTOR_PORT}"
    command = node_problem_detector_command()
    values = yaml.safe_load((CHARTS / "neuron-helm-chart-1.9.0" / "chart" / "values.yaml").read_text())
    default = values["npd"]["nodeProblemDetector"]["image"]["command"]
    assert command[:2] == default[:2] == ["/bin/sh", "-c"]
    # The chart's script with exactly two flags more: NPD's exporter binds 127.0.0.1 unless told
    # otherwise, and the collector scrapes the pod address.
    ours = [line.strip() for line in command[2].strip().splitlines()]
    theirs = [line.strip() for line in default[2].strip().splitlines()]
    added = [line for line in ours if line not in theirs]
    assert added == [
        "--config.system-log-monitor=/config/kernel-monitor.json \\",
        "--prometheus-address=0.0.0.0 \\",
        f"--prometheus-port={NODE_PROBLEM_DETECTOR_PORT} 2>&1 &",
    ]
    assert [line for line in theirs if line not in ours] == [
        "--config.system-log-monitor=/config/kernel-monitor.json 2>&1 &"
    ]


def test_every_neuron_monitor_metric_we_read_is_one_it_exports() -> None:
    """The exporter's names, as the CloudWatch agent (which AWS ships to scrape it) lists them."""
    translator = (
        UPSTREAM_MANIFEST.parent / "amazon-cloudwatch-agent-metricstransformprocessor-translator.go"
    ).read_text()
    block = translator.split("renameMapForNeuronMonitor = map[string]string{", 1)[1].split("}", 1)[0]
    exported = set(re.findall(r'"([a-z_]+)":', block))
    exported |= {f"{m}_info" for m in ("neuron_hardware", "instance")}  # Info metrics gain _info on the wire
    assert "hardware_ecc_events_total" in exported
    # The collector keeps only these (and every alert and dashboard query reads a kept one, below).
    for pattern in NEURON_METRICS:
        assert any(re.fullmatch(pattern, name) for name in exported), pattern


def test_neuron_health_and_endpoint_errors_alert() -> None:
    rules = {r.name: r for r in alert_list(AlertThresholds(endpoint_5xx_per_5_minutes=7))}
    assert rules["NeuronHealthCondition"].expr == (
        'max by (cluster, node, reason) (problem_gauge{type="NeuronHealth"}) > 0'
    )
    assert rules["NeuronHealthCondition"].severity == "critical"
    assert 'status="5xx"' in rules["EndpointServerErrors"].expr
    assert rules["EndpointServerErrors"].expr.endswith(">= 7")


def test_vllm_job_finds_endpoint_pods_by_the_label_the_platform_sets() -> None:
    keep = job("vllm")["relabel_configs"][0]
    label = COMPONENT_LABEL.replace(".", "_").replace("/", "_")
    assert keep["source_labels"][0] == f"__meta_kubernetes_pod_label_{label}"
    assert keep["regex"] == "neuron-endpoint;8000"


def test_every_job_drops_what_nobody_reads() -> None:
    for scrape in scrape_config(cluster_name="c")["scrape_configs"]:
        (drop,) = scrape["metric_relabel_configs"]
        assert drop["action"] == "keep", scrape["job_name"]
        assert drop["source_labels"] == ["__name__"], scrape["job_name"]


def test_only_the_api_server_is_named_and_auth_is_the_collector_token() -> None:
    # The collector resolves no DNS name but the API server; auth must be its bearer token.
    scheduler = job("kube-scheduler")
    assert scheduler["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
    }
    for scrape in scrape_config(cluster_name="c")["scrape_configs"]:
        assert "static_configs" not in scrape


def test_every_alert_and_dashboard_query_reads_a_collected_metric() -> None:
    exprs = [rule.expr for rule in alert_list(AlertThresholds())]
    exprs += [expr for panel in grafana_dashboard.PANELS for expr, _ in panel.queries]
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        missing = [n for n in names if not is_kept(n)]
        assert not missing, f"{expr}: {missing} is dropped by the collector"


def test_metric_name_parser_finds_names_and_ignores_functions() -> None:
    assert metric_names('sum by (node) (rate(execution_errors_total{a="b"}[5m])) > 3') == {"execution_errors_total"}
    assert metric_names("avg by (node) (vllm:num_requests_running)") == {"vllm:num_requests_running"}


def test_thresholds_reach_the_rules() -> None:
    rules = {
        r["alert"]: r
        for r in alert_rules(
            AlertThresholds(
                idle_core_utilization=0.1,
                idle_core_minutes=45,
                pending_pod_minutes=5,
                execution_errors_per_10_minutes=3,
            )
        )["groups"][0]["rules"]
    }
    assert rules["NeuronCoresIdle"]["expr"].endswith("< 0.1")
    assert rules["NeuronCoresIdle"]["for"] == "45m"
    assert rules["PodsPendingTooLong"]["expr"].endswith("> 300")
    assert rules["NeuronExecutionErrors"]["expr"].endswith(">= 3")


def test_rule_file_round_trips_through_yaml() -> None:
    document = alert_rules(AlertThresholds())
    assert yaml.safe_load(to_yaml(document)) == document


def test_alert_manager_sends_to_sns_with_sigv4() -> None:
    outer = yaml.safe_load(
        alertmanager_definition(topic_arn="arn:aws:sns:us-east-1:111122223333:t", region="us-east-1")
    )
    config = yaml.safe_load(outer["alertmanager_config"])
    (receiver,) = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    (sns,) = receiver["sns_configs"]
    assert sns["topic_arn"] == "arn:aws:sns:us-east-1:111122223333:t"
    assert sns["sigv4"] == {"region": "us-east-1"}


def test_long_values_are_never_folded() -> None:
    # A CDK token inside the topic ARN must survive YAML dumping in one piece.
    token = "${Token[TOKEN." + "9" * 200 + "]}"
    assert token in alertmanager_definition(topic_arn=token, region="us-east-1")
