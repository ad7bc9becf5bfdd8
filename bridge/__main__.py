"""`ximss-bridge`: serve (default), check-config, shell."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bridge import config
from bridge.app import configure_logging, install_event_loop_policy, serve
from bridge.transport.tls import server_context


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ximss-bridge", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, help="TOML settings file")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the bridge (default)")
    commands.add_parser("check-config", help="validate the settings and print a summary")
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
        return 0
    configure_logging(settings.server.log_level)
    install_event_loop_policy()
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
