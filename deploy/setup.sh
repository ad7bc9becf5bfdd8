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
    # postfix
    # kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3
    # redis-server
    # baresip-core
)
# Python packages come from pyproject.toml ("pip install -e .[dev]"); Radicale will go there.
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
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
else
    say "apt packages present: ${APT_PACKAGES[*]}"
fi

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
