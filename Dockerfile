# mtlsproxy in a container: a build stage with the -dev packages, and a
# small runtime stage with only the shared libraries, running as a non-root
# user.  Configuration, certificates and keys are mounted at /etc/mtlsproxy.
#
#   docker build -t mtlsproxy .
#   docker run -d --name mtlsproxy -p 8443:8443 \
#       -v /srv/mtlsproxy:/etc/mtlsproxy:ro mtlsproxy
#
# The mounted mtlsproxy.yaml must enable the admin endpoint on
# 127.0.0.1:9901 for the HEALTHCHECK (admin: {listen: "127.0.0.1:9901"}),
# listen on a port above 1024 (the user is not root), and can keep
# "reload: watch" so that replaced certificates are picked up.  The image is
# built without libsystemd: `mtlsproxy -V` says "systemd: no".
# See docs/deploy.md.

FROM debian:12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config libssl-dev libevent-dev libyaml-dev \
        node-llhttp \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY src/ src/
RUN make -j"$(nproc)" WERROR=1 \
    && build/mtlsproxy -V

FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libssl3 libevent-2.1-7 libevent-core-2.1-7 libevent-openssl-2.1-7 \
        libevent-pthreads-2.1-7 libyaml-0-2 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mtlsproxy \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin mtlsproxy
COPY --from=build /src/build/mtlsproxy /usr/local/bin/mtlsproxy
COPY conf/mtlsproxy.yaml /usr/share/doc/mtlsproxy/mtlsproxy.yaml.example
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
VOLUME ["/etc/mtlsproxy"]
EXPOSE 8443
# SIGTERM drains open connections for up to drain_timeout (default 30s):
# stop with `docker stop -t 35`, or lower drain_timeout below Docker's 10 s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9901/healthz"]
ENTRYPOINT ["/usr/local/bin/mtlsproxy"]
CMD ["-c", "/etc/mtlsproxy/mtlsproxy.yaml"]
