"""Timing and statistics."""
