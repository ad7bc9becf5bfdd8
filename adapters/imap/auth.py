"""Logging users in to an IMAP server: password logins, and SASL relayed to the server."""

from __future__ import annotations

import contextlib

from adapters.imap.client import ImapClient, SaslTurn
from adapters.imap.errors import ImapCommandFailed
from adapters.imap.namespaces import Namespaces
from adapters.imap.store import ImapMailStore, Reconnector
from adapters.imap.watch import WatcherRegistry
from adapters.protocols import MailStore
from bridge.config import ImapSettings
from bridge.errors import BridgeError, ErrorKind

# Mechanisms relayed to the server as they are; PLAIN is decoded by the front end and sent as LOGIN.
RELAYED_MECHANISMS = ("CRAM-MD5",)


class ImapAuthenticator:
    def __init__(self, domain: str, settings: ImapSettings, command_timeout: float) -> None:
        self.domain = domain
        self._settings = settings
        # Shared by every session of every account of this domain.
        self.watchers = WatcherRegistry()
        self._timeout = command_timeout

    @property
    def sasl_mechanisms(self) -> tuple[str, ...]:
        return ("PLAIN", *RELAYED_MECHANISMS)

    async def _connect(self) -> ImapClient:
        s = self._settings
        return await ImapClient.connect(
            s.host,
            s.port,
            security=s.security,
            connect_timeout=s.connect_timeout,
            command_timeout=self._timeout,
            max_literal=s.max_literal_bytes,
        )

    async def _password_client(self, username: str, password: str, authzid: str) -> ImapClient:
        client = await self._connect()
        try:
            if authzid:
                # Master-user style login: the server checks the operator's right to act as authzid.
                await _authenticate_plain(client, authzid, username, password)
            else:
                await client.login(username, password)
        except ImapCommandFailed as exc:
            await client.close()
            raise BridgeError(ErrorKind.AUTH_FAILED) from exc
        except BaseException:
            await client.close()
            raise
        return client

    async def login(self, username: str, password: str, authzid: str = "") -> MailStore:
        client = await self._password_client(username, password, authzid)
        # Reconnects (and the mailbox connections of folders) log in with the current password:
        # passwordModify replaces it through the store's set_password.
        current = [password]

        async def reconnect() -> ImapClient:
            return await self._password_client(username, current[0], authzid)

        store = await self._store(authzid or username, client, reconnect)
        if not authzid:  # a master login keeps the operator's credentials
            store.on_new_password(lambda new: current.__setitem__(0, new))
        return store

    async def _store(
        self, account: str, client: ImapClient, reconnect: Reconnector | None
    ) -> ImapMailStore:
        try:
            namespaces = Namespaces()
            if client.has("NAMESPACE"):
                result = await client.execute("NAMESPACE", wants=("NAMESPACE",))
                found = result.of("NAMESPACE")
                if found:
                    namespaces = Namespaces.from_response(found[0].values)
        except BaseException:
            await client.close()
            raise
        return ImapMailStore(account, client, namespaces, self._settings, reconnect, self.watchers)

    async def close(self) -> None:
        await self.watchers.stop()

    async def probe(self) -> None:
        client = await self._connect()
        await client.close()

    async def begin_sasl(self, mechanism: str) -> ImapSasl:
        if mechanism.upper() not in RELAYED_MECHANISMS:
            raise BridgeError(ErrorKind.NOT_SUPPORTED, f"SASL method {mechanism} is not supported")
        client = await self._connect()
        if f"AUTH={mechanism.upper()}" not in client.capabilities:
            await client.close()
            raise BridgeError(
                ErrorKind.NOT_SUPPORTED, f"the mail server does not offer {mechanism}"
            )
        try:
            turn = await client.authenticate(mechanism.upper())
        except BaseException:
            await client.close()
            raise
        return ImapSasl(self, client, turn)


class ImapSasl:
    """A relayed challenge-response login. The resulting session cannot reconnect by itself:
    the bridge never learns the password (use master-user mode where that matters)."""

    def __init__(self, owner: ImapAuthenticator, client: ImapClient, turn: SaslTurn) -> None:
        self._owner = owner
        self._client = client
        self._turn = turn
        self._finished = False

    async def challenge(self) -> bytes:
        return await self._turn.challenge()

    async def finish(self, response: bytes) -> MailStore:
        try:
            await self._turn.respond(response)
        except ImapCommandFailed as exc:
            raise BridgeError(ErrorKind.AUTH_FAILED) from exc
        self._finished = True
        user = response.decode("utf-8", "replace").rsplit(" ", 1)[0].lower()
        if "@" not in user:
            user = f"{user}@{self._owner.domain}"
        return await self._owner._store(user, self._client, None)

    async def abort(self) -> None:
        if self._finished:
            return
        with contextlib.suppress(Exception):
            await self._turn.cancel()
        await self._client.close()


async def _authenticate_plain(
    client: ImapClient, authzid: str, username: str, password: str
) -> None:
    turn = await client.authenticate("PLAIN")
    await turn.challenge()
    await turn.respond(f"{authzid}\x00{username}\x00{password}".encode())
