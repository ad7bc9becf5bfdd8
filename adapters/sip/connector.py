"""A domain's SIP service for the bridge: one user agent per bound session, logged in with the
mail credentials (digest username: the address's local part, realm: the SIP domain)."""

from __future__ import annotations

from collections.abc import Callable

from adapters.protocols import IncomingMessage, IncomingSignalingCall, SignalingAgent
from adapters.sip.agent import UserAgent
from adapters.sip.endpoint import UaConfig
from bridge.config import SipSettings


class SipConnector:
    def __init__(self, settings: SipSettings, mail_domain: str) -> None:
        self.settings = settings
        self.domain = settings.domain or mail_domain

    def address(self, account: str) -> str:
        """The user's SIP address of record for a mail account (`name@domain`)."""
        return f"sip:{account.partition('@')[0]}@{self.domain}"

    async def start(
        self,
        account: str,
        password: str,
        *,
        display_name: str | None,
        on_call: Callable[[IncomingSignalingCall], None],
        on_message: Callable[[IncomingMessage], int | None],
    ) -> SignalingAgent:
        config = UaConfig(
            username=account.partition("@")[0],
            password=password,
            domain=self.domain,
            proxy=(self.settings.host, self.settings.port),
            transport=self.settings.transport,
            display_name=display_name,
            registration_check=self.settings.registration_check_seconds,
            local_host=self.settings.local_host,
        )
        return await UserAgent.start(config, on_call=on_call, on_message=on_message)
