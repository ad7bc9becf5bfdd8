#!/usr/bin/env bash
# Install what the development stack needs on Debian 12, idempotently. Run as root:
#
#     deploy/setup.sh
#
# Then: .venv/bin/python deploy/devstack.py start    (see deploy/devstack.py)
#
# Never starts the Debian system services of the packages it installs (the dev stack runs its
# own private instances on loopback ports), and never stops anything.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# apt packages of the dev stack -- add new backends here.
APT_PACKAGES=(
    dovecot-imapd   # IMAP (pulls dovecot-core)
    dovecot-lmtpd   # LMTP delivery, for Postfix
    chromium        # headless browser check of the HTTP binding (tests/e2e/test_browser.py)
    postfix         # SMTP submission; the dev stack runs its own instance (postfix -c DIR)
    openssl         # the dev stack's self-signed certificate for Postfix's STARTTLS
    kamailio        # SIP registrar/proxy; the dev stack runs its own instance (kamailio -f CFG)
    kamailio-presence-modules  # presence + presence_xml (PUBLISH/SUBSCRIBE/NOTIFY)
    kamailio-sqlite-modules    # db_sqlite: the subscriber table for digest auth
    sqlite3         # inspecting that table by hand (the dev stack writes it with Python's sqlite3)
    baresip-core    # headless SIP far end for the tests (ctrl_tcp, aubridge)
    redis-server    # shared state of replicas; the dev stack runs its own (deploy/redis_server.py)
)
# Python packages (Radicale too) come from pyproject.toml ("pip install -e .[dev]").
# ---------------------------------------------------------------------------------------------

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
STAMP="$VENV/.devstack-pyproject.sha256"
MAIL_USER=vmail

say() { printf 'setup: %s\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
    echo "setup: must run as root (apt, the vmail user, Dovecot)" >&2
    exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

apt_install() {
    # Keep maintainer scripts from starting the system services (dovecot.service on port 143,
    # ...): a policy-rc.d answering 101 is honoured by invoke-rc.d and deb-systemd-invoke.
    # An existing policy (e.g. Docker's) is left untouched.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    local rc=0
    if [[ ! -d /var/lib/apt/lists ]] || ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
        say "apt-get update"
        apt-get update -qq || rc=$?
    fi
    if [[ $rc -eq 0 ]] && ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; then
        say "apt-get update (install failed, retrying once)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } \
            || rc=$?
    fi
    if [[ $own_policy -eq 1 ]]; then rm -f "$policy"; fi
    return "$rc"
}

# --- apt ------------------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
new_services=()
for service in kamailio redis-server; do
    if [[ " ${missing[*]} " == *" $service "* ]]; then new_services+=("$service"); fi
done
if ! installed postfix && [[ " ${missing[*]} " == *" postfix "* ]]; then
    new_services+=(postfix)
    # "No configuration": no /etc/postfix/main.cf, no questions, nothing for a system Postfix to
    # run with. The dev stack's instance has its own main.cf/master.cf (deploy/devstack.py).
    say "preseeding postfix: No configuration"
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
fi
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
else
    say "apt packages present: ${APT_PACKAGES[*]}"
fi
# policy-rc.d kept the system services from starting; keep them from starting at boot too. A
# package that was installed before this script is left as its owner set it up.
for service in "${new_services[@]}"; do
    say "disabling the system $service service (the dev stack runs its own)"
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --quiet "$service.service" || true
    elif command -v update-rc.d >/dev/null; then
        update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
done

# --- mail user (Dovecot refuses uid 0 for mail access) ----------------------------------------
if ! id -u "$MAIL_USER" >/dev/null 2>&1; then
    say "creating system user $MAIL_USER"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$MAIL_USER"
fi

# --- Python venv ----------------------------------------------------------------------------
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: python3 >= 3.11 required, found $(python3 -V 2>&1)" >&2
    exit 1
fi
if [[ ! -x $VENV/bin/python ]]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        say "installing python3-venv"
        apt_install python3-venv
    fi
    say "creating $VENV"
    python3 -m venv "$VENV"
fi

want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ $want != "$have" ]]; then
    say "pip install -e '$REPO[dev]'"
    "$VENV/bin/python" -m pip install --quiet -e "$REPO[dev]"
    printf '%s\n' "$want" >"$STAMP"
else
    say "venv up to date with pyproject.toml"
fi

say "done. Start the stack: $VENV/bin/python $REPO/deploy/devstack.py start"
