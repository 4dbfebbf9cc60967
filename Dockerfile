# GRINQH Serve on Debian 12, CPU backend (the CUDA image comes with the CUDA backend).
#   docker build -t grinqh-serve .
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
      libabsl20220623 libpcre2-8-0 libutf8proc2 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 grinqh
COPY --from=build /src/build/server/grinqh /usr/local/bin/grinqh
COPY --from=build /src/models /opt/grinqh/models
USER 10001
ENTRYPOINT ["/usr/local/bin/grinqh"]
CMD ["generate", "--model", "/opt/grinqh/models/tiny-llama3", "--prompt", "def fibonacci(n):"]
