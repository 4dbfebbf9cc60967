# GRINQH Serve on Debian 12, CPU backend (the CUDA image comes with the CUDA backend).
#   docker build -t grinqh-serve .
#   docker run --rm -p 50051:50051 -p 8000:8000 -p 9400:9400 grinqh-serve   # gRPC, OpenAI HTTP API, /metrics
#   docker run --rm grinqh-serve generate --model /opt/grinqh/models/tiny-llama3 --prompt 'def f(x):'
FROM debian:12 AS build
WORKDIR /src
COPY scripts/ scripts/
RUN ./scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Portable binary: the image may run on another CPU than the one that built it.
RUN ./scripts/build.sh /src/build -DGRINQH_NATIVE=OFF -DGRINQH_WERROR=OFF

FROM debian:12-slim
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libabsl20220623 libpcre2-8-0 libutf8proc2 libgrpc++1.51 libprotobuf32 libyaml-cpp0.7 \
      libcpp-httplib0.11 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 grinqh
COPY --from=build /src/build/server/grinqh /usr/local/bin/grinqh
COPY --from=build /src/models /opt/grinqh/models
COPY config/grinqh.yaml /etc/grinqh/grinqh.yaml
USER 10001
EXPOSE 50051 8000 9400
# SIGTERM drains: health turns NOT_SERVING, /ready 503, running streams finish, then exit 0.
# --host 0.0.0.0 binds the HTTP API (loopback-only by default) where -p can reach it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/grinqh"]
CMD ["serve", "--config", "/etc/grinqh/grinqh.yaml", "--model", "/opt/grinqh/models/tiny-llama3", "--host", "0.0.0.0"]
