"""Reporters: console text in the seed's format, the run log, the JSON result."""
