# Warden runtime image on the official Python image.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash coreutils procps file tree ripgrep git curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir cloudpickle numpy pandas requests matplotlib
# Everything below is shared by both recipes.
RUN groupadd --gid 1000 sandbox \
 && useradd --uid 1000 --gid 1000 --no-log-init --create-home --shell /bin/bash sandbox \
 && mkdir -p /workspace \
 && chown 1000:1000 /workspace \
 && chmod 0755 /workspace
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib
LABEL org.warden.runtime="1" \
      org.warden.runtime.version="1"
WORKDIR /workspace
USER 1000:1000
