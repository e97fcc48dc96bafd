"""Operations: Neuron metrics and alerts (managed Prometheus), alarms to SNS, the cost guard, dashboards."""
