# syntax=docker/dockerfile:1
# The modelruntime server image: `docker build -t modelruntime .` at the repository root.
# Two stages: wheels are installed into a virtualenv in the first; the final image is a clean
# python slim with only that virtualenv (no compiler, no pip, no sources besides the package),
# running as an unprivileged user. deploy/kubernetes/ runs it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY clients/python/ clients/python/
COPY server/ server/
COPY providers/ providers/
# Every dependency ships a manylinux wheel; --only-binary keeps it that way (no compiler needed).
RUN python -m venv /opt/modelruntime \
    && /opt/modelruntime/bin/pip install --only-binary=:all: --no-binary=modelruntime,modelruntime-client \
         -c constraints.txt ./clients/python . \
    && /opt/modelruntime/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 modelruntime \
    && useradd --system --uid 10001 --gid modelruntime --no-create-home \
         --home-dir /nonexistent --shell /usr/sbin/nologin modelruntime
COPY --from=build /opt/modelruntime /opt/modelruntime
ENV PATH=/opt/modelruntime/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODELRUNTIME_ADDRESS=0.0.0.0:50051
USER 10001:10001
# gRPC, and the Prometheus endpoint when metrics_address enables it.
EXPOSE 50051 9464
ENTRYPOINT ["modelruntime"]
CMD ["serve"]
