"""Past one machine: classify and accuracy on a Ray cluster (Ray Data), resumable."""
