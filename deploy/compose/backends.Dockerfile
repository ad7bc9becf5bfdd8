# The Debian backends of deploy/compose.yaml: Postfix and Kamailio from Debian 12's packages (the
# versions the dev stack runs, deploy/setup.sh) and Radicale from PyPI (as the dev stack's
# pyproject.toml dev extra). One image, one service each: the compose file picks the command.
# Dovecot comes from its own image (dovecot/dovecot). Built by "docker compose build".
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
ARG RADICALE_VERSION=3.9.0
# "No configuration": Postfix's package writes no main.cf; compose mounts ours.
RUN echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        postfix \
        kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3 \
        python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/radicale \
    && /opt/radicale/bin/pip install --no-cache-dir "radicale==${RADICALE_VERSION}" \
    && useradd --system --user-group --home-dir /var/lib/radicale --shell /usr/sbin/nologin radicale \
    && mkdir -p /var/lib/radicale/collections /var/lib/kamailio /run/kamailio \
    && chown -R radicale:radicale /var/lib/radicale \
    && chown kamailio:kamailio /var/lib/kamailio /run/kamailio
