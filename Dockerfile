# rn50 in a container: `docker build -t rn50 .` then either
#   docker run --rm rn50                                   (the default synthetic benchmark)
#   python launch_benchmark.py ... --docker-image rn50     (the seed's workflow: the same run inside)
# numactl is installed so that --socket-id / multi-instance runs can bind CPUs and memory
# (memory binding needs `docker run --privileged`, which launch_benchmark.py adds when needed).
FROM python:3.12-slim
ARG EXTRAS=onnxruntime
RUN apt-get update && apt-get install -y --no-install-recommends numactl \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /opt/rn50/
COPY src /opt/rn50/src
RUN pip install --no-cache-dir "/opt/rn50[${EXTRAS}]"
WORKDIR /workspace
CMD ["rn50", "bench"]
