"""Launching the measured run in a child process with its settings already applied."""
