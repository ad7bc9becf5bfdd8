"""What operations reach beyond the connection: routing to each domain's backends, the session
directory, and the settings. Built once by `app.py`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.passwdfile import PasswdFileProvisioner
from adapters.protocols import (
    CalendarConnector,
    MailAuthenticator,
    Provisioner,
    SignalingConnector,
)
from bridge.config import DomainSettings, ProvisioningSettings, Settings, StateSettings
from bridge.errors import BridgeError, ErrorKind
from bridge.session.calendar_watch import CalendarPollers
from bridge.session.calendars import ItemIdRegistry
from bridge.session.handles import HandleRegistry
from bridge.session.registry import SessionRegistry
from bridge.state import Store
from bridge.state.redis import RedisStore
from bridge.state.sqlite import SqliteStore
from bridge.views.rows import RowCache

if TYPE_CHECKING:
    from bridge.cluster import Cluster


@dataclass(frozen=True, slots=True)
class DomainServices:
    name: str
    settings: DomainSettings
    mail: MailAuthenticator
    # signup, passwordModify, recoverPassword; None: the domain offers none of them. Left None,
    # it is built from `settings.provisioning` when Services starts.
    provisioner: Provisioner | None = None
    # Calendars (calendarOpen...); None: the domain has no CalDAV server.
    calendars: CalendarConnector | None = None
    # signalBind, calls, IMs; None: the domain has no SIP server.
    signaling: SignalingConnector | None = None


# provisioning.kind -> how to build it (the implementation is chosen by the config string).
PROVISIONERS: dict[str, Callable[[str, ProvisioningSettings], Provisioner]] = {
    "passwd-file": PasswdFileProvisioner.from_settings,
}


# state.backend -> the store: one file of this process, or a Redis the replicas share.
STORES: dict[str, Callable[[StateSettings], Store]] = {
    "sqlite": lambda state: SqliteStore(state.path),
    "redis": lambda state: RedisStore(state.url),
}


def _with_provisioner(domain: DomainServices) -> DomainServices:
    settings = domain.settings.provisioning
    if domain.provisioner is not None or not settings.kind:
        return domain
    provisioner = PROVISIONERS[settings.kind](domain.name, settings)
    return dataclasses.replace(domain, provisioner=provisioner)


class Services:
    def __init__(
        self, settings: Settings, domains: dict[str, DomainServices], sessions: SessionRegistry
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.rows = RowCache(settings.cache.max_summaries)
        self.state: Store = STORES[settings.state.backend](settings.state)
        self.calendar_ids = ItemIdRegistry(self.state)
        self.calendar_pollers = CalendarPollers()
        self.xmap_handles = HandleRegistry(self.state)
        # Set by app.py on a clustered replica: the session directory and request forwarding.
        self.cluster: Cluster | None = None
        self._domains = {name.lower(): _with_provisioner(value) for name, value in domains.items()}

    def domain(self, name: str | None) -> DomainServices:
        wanted = (name or self.settings.server.default_domain).strip().lower()
        found = self._domains.get(wanted)
        if found is None:
            raise BridgeError(ErrorKind.UNKNOWN_DOMAIN)
        return found

    @property
    def domain_names(self) -> list[str]:
        return list(self._domains)

    def replace_domains(self, domains: dict[str, DomainServices]) -> list[DomainServices]:
        """SIGHUP: the backends new logins use from now on. Returns the entries no longer
        routed to; sessions that already use their backends keep them (app.py closes them at
        shutdown)."""
        current = {name.lower(): _with_provisioner(value) for name, value in domains.items()}
        retired = [old for old in self._domains.values() if old not in current.values()]
        self._domains = current
        return retired
