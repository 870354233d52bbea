# vehicle-gateway: the gRPC gateway in front of Smartcar.
#
# The builder installs the locked dependencies (requirements/runtime.txt: exact versions,
# hashes checked), then the project without resolving anything more: the same two pip steps
# the Makefile runs before every test run. The runtime stage copies that environment into a
# slim image and runs it as an unprivileged user. The health check
# asks the server's own grpc.health.v1.Health service through a probe shipped in the package,
# on a loopback plaintext port serving health alone (VG_HEALTH_LISTEN), so it needs no
# credentials whether the gRPC port is plaintext with a policy, TLS or mTLS.
#
# Listening on 0.0.0.0 needs an access policy: mount one and set VG_ACCESS_POLICY (the
# README's "Container" section gives the whole `docker run` command). State (SQLite, the
# development key) lives in the /app/var volume, owner-only.

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN python -m pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY storage ./storage
COPY clients ./clients
RUN python -m pip install --no-cache-dir --no-deps .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VG_VAR_DIR=/app/var \
    VG_HEALTH_LISTEN=127.0.0.1:50052
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /app gateway \
    && install -d -m 0700 -o 10001 -g 10001 /app/var
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
VOLUME ["/app/var"]
USER 10001:10001
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "gateway.edge.grpc.healthcheck"]
STOPSIGNAL SIGTERM
CMD ["vehicle-gateway", "serve", "--listen", "0.0.0.0:50051"]
