"""Promotion gate: policy, evidence and evaluation."""
