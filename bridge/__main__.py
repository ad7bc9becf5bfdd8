"""`ximss-bridge`: serve (default), check-config, shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bridge import config, probes
from bridge.app import install_event_loop_policy, serve
from bridge.logs import configure_logging
from bridge.transport.tls import server_context


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ximss-bridge", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, help="TOML settings file")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the bridge (default)")
    check = commands.add_parser(
        "check-config", help="validate the settings, print a summary, probe the backends"
    )
    check.add_argument("--no-probe", action="store_true",
                       help="only validate (offline): do not contact the backends")  # fmt: skip
    check.add_argument("--probe-timeout", type=float, default=probes.DEFAULT_TIMEOUT,
                       help="seconds each probe may take (default %(default)s)")  # fmt: skip
    shell = commands.add_parser("shell", help="send raw XIMSS XML to a bridge and print replies")
    shell.add_argument("--host", default="127.0.0.1")
    shell.add_argument("--port", type=int, default=11024)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "shell":
        from bridge.shell import run_shell

        return asyncio.run(run_shell(args.host, args.port))
    try:
        settings = config.load(args.config)
    except config.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if settings.tls.configured:
            server_context(settings.tls)  # loads the certificate and key: fail here, clearly
    except config.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(config.describe(settings))
        return 0 if args.no_probe else _probe(settings, args.probe_timeout)
    configure_logging(settings.server.log_level, settings.server.log_format)
    install_event_loop_policy()
    asyncio.run(serve(settings, args.config))
    return 0


def _probe(settings: config.Settings, timeout: float) -> int:
    """One line per backend probe; 1 when any failed."""
    results = asyncio.run(probes.run_all(probes.plan(settings), timeout))
    for result in results:
        print(result.line())
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
