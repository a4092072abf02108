"""Scenarios: what is measured (the benchmark now; accuracy and classify later)."""
