"""The Grafana dashboard over the Prometheus workspace, and its committed copy."""

from __future__ import annotations

import json
from pathlib import Path

from neuron_platform.operations.grafana_dashboard import PANELS, dashboard, dashboard_json

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "operations" / "neuron-cluster-dashboard.json"


def test_dashboard_covers_what_on_call_watches() -> None:
    titles = {panel["title"] for panel in dashboard()["panels"]}
    for expected in (
        "NeuronCore utilization by node",
        "Neuron device memory used by node",
        "Neuron execution errors per second",
        "Neuron execution latency",
        "Nodes per NodePool",
        "Pending pods",
        "Karpenter launches (15 min)",
        "Karpenter interruptions and disruptions (15 min)",
        "Endpoint latency p99",
        "Endpoint server errors per second",
        "Neuron health conditions (node problem detector)",
        "Endpoint generated tokens per second",
    ):
        assert expected in titles


def test_panels_use_the_datasource_variable_and_do_not_overlap() -> None:
    board = dashboard()
    assert board["templating"]["list"][0]["name"] == "datasource"
    cells = set()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["expr"] and t["refId"] for t in panel["targets"])
        pos = panel["gridPos"]
        cell = (pos["x"], pos["y"])
        assert cell not in cells
        cells.add(cell)
    assert len(board["panels"]) == len(PANELS)
    assert len({p["id"] for p in board["panels"]}) == len(PANELS)


def test_committed_dashboard_is_current() -> None:
    assert COMMITTED.read_text() == dashboard_json(), "run 'make dashboards' and commit the result"
    assert json.loads(COMMITTED.read_text())["uid"] == "neuron-platform-cluster"
