"""Serving: endpoint specs, the planner (plain Python) and the EKS/SageMaker constructs."""
