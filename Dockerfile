# plantd-broker as a container image (docs/container.md).
#
#   docker build -t plantd-broker .
#   docker run -p 7200:7200 -p 7201:7201 -p 8081:8081 plantd-broker
#
# Two stages: the first compiles with the project's own dependency script,
# the second holds the two binaries and only the Debian packages of the
# shared libraries they load (found from the binaries themselves). Build
# arguments: BASE, the Debian image both stages start from (the tests give
# a local one, as no registry is reachable there); REVISION, shown by
# --version (the build context has no .git); JOBS, parallel compile jobs.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ARG REVISION=unknown
ARG JOBS=
WORKDIR /src
# The dependency script alone first, so a change to the sources does not
# download the toolchain again.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh build
COPY . .
# RelWithDebInfo is -O2; the binaries are stripped when copied out. The test
# hooks (SIGUSR1 stalls the core) have no place in a production image.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPLANTD_BUILD_TESTS=OFF -DPLANTD_BUILD_BENCH=OFF -DPLANTD_TEST_HOOKS=OFF \
      -DPLANTD_GIT_REVISION="${REVISION}" \
 && cmake --build /build -j "${JOBS:-$(nproc)}" --target plantd-broker plantd-mdp \
 && install -D -s -m 0755 /build/plantd-broker /out/usr/bin/plantd-broker \
 && install -D -s -m 0755 /build/plantd-mdp /out/usr/bin/plantd-mdp \
 && install -D -m 0755 deploy/container/healthcheck.sh /out/usr/lib/plantd-broker/healthcheck \
 && deploy/container/runtime-packages.sh /out/usr/bin/plantd-broker /out/usr/bin/plantd-mdp \
      > /out/runtime-packages.txt

FROM ${BASE}
ARG REVISION=unknown
LABEL org.opencontainers.image.title="plantd-broker" \
      org.opencontainers.image.description="plantd message broker: Majordomo request-reply and pub/sub buses" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
# A user of its own (fixed ids, so a volume's owner is the same in every
# image), and the state directory it owns: the durable store lives there.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
      apt-get install -y --no-install-recommends \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && groupadd --system --gid 10001 plantd \
 && useradd --system --uid 10001 --gid plantd --home-dir /var/lib/plantd-broker \
      --no-create-home --shell /usr/sbin/nologin plantd \
 && install -d -o plantd -g plantd -m 0750 /var/lib/plantd-broker
COPY --from=build /out/usr/ /usr/

# Configuration is the broker's own: PLANTD_BROKER_* variables (docker run
# -e), flags after the image name, or a YAML file mounted and named by
# PLANTD_BROKER_CONFIG. The built-in defaults bind every interface, as port
# publishing needs; only the store is moved into the volume.
ENV PLANTD_BROKER_STORE_PATH=/var/lib/plantd-broker/plantd-broker.db
VOLUME ["/var/lib/plantd-broker"]
WORKDIR /var/lib/plantd-broker
USER 10001:10001

# Majordomo clients 7200, workers 7201, HTTP health and metrics 8081; the
# default buses control (11000 publishers, 11001 subscribers, 11002 capture)
# and data (12000-12002).
EXPOSE 7200 7201 8081 11000 11001 11002 12000 12001 12002
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/lib/plantd-broker/healthcheck"]
# SIGTERM drains: requests in flight get shutdown_grace (5 s) to finish
# before workers are told DISCONNECT; docker stop waits 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/plantd-broker"]
