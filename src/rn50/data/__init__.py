"""Input data: synthetic batches now; real images come with the data sources."""
