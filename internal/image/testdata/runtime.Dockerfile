# Warden runtime image on a Debian base built offline from packages.
FROM warden-base:bookworm
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
