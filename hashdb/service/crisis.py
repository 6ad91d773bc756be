"""The crisis protocol: incidents, and the signed webhooks that announce hashes shared under one."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from hashdb.errors import AlreadySent, Conflict, Forbidden, InvalidInput, NotFound
from hashdb.service.base import MAX_EXPORT_PAGE, ServiceBase
from hashdb.trust import delivery, incidents, policy, webhooks
from hashdb.types import DeliveryAttempt, Incident, Principal, Webhook

MAX_ID = 2**63 - 1  # SQLite's largest INTEGER


class CrisisMixin(ServiceBase):
    def open_incident(self, name: str, actor: Principal, description: str = "") -> Incident:
        policy.require(actor, "admin", "open an incident")
        name = incidents.check_name(name)
        alike = incidents.same_reading(name, self.store.incidents(False))
        if alike is not None:
            # Look-alike names split members' tags between two incidents (found in trial).
            raise Conflict(f"an incident named {alike.name!r} already exists, and {name!r} reads the same")
        return self.store.open_incident(name, incidents.check_description(description), actor)

    def close_incident(self, incident: int | str, actor: Principal) -> Incident:
        """Close an incident named by id or by name (names are never all digits)."""
        policy.require(actor, "admin", "close an incident")
        if isinstance(incident, str) and not (incident.isascii() and incident.isdigit()):
            found = self.store.find_incident(incident.strip())
            if found is None:
                raise NotFound(f"no incident named {incident!r}")
            return self.store.close_incident(found.id, actor)
        if int(incident) > MAX_ID:
            raise NotFound(f"no incident with id {incident}")  # SQLite could not even look it up
        return self.store.close_incident(int(incident), actor)

    def get_incident(self, incident_id: int, actor: Principal) -> Incident:
        policy.require(actor, "admin", "read an incident")
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(f"no incident with id {incident_id}")
        return incident

    def list_incidents(self, actor: Principal, open_only: bool = False) -> list[Incident]:
        policy.require(actor, "admin", "list incidents")
        return self.store.incidents(open_only)

    def add_webhook(self, org: str, url: str, actor: Principal,
                    first_sending: Callable[[], bool] | None = None) -> tuple[str, Webhook]:
        """Subscribe `org` to new incident hashes; the signing secret is returned once.
        `first_sending`: as for create_key, asked only once the webhook may be added."""
        # A webhook pushes hash values, as the change feed does: only for organisations that may
        # read the feed (a partner or admin key). A consumer's key had subscribed its
        # organisation and received every incident hash (found in trial).
        policy.require(actor, "export", "subscribe to incident webhooks (they carry hash values, as the feed does)")
        if not actor.is_admin and org != actor.org_name:
            raise Forbidden("an organisation may only register webhooks for itself")
        url = webhooks.check_url(url, self.settings)
        organisation = self.store.get_org(org)
        if organisation is None:
            raise NotFound(f"no organisation named {org!r}")
        if not any(k.org_id == organisation.id and k.revoked_at is None and k.role in policy.PERMISSIONS["export"]
                   for k in self.store.list_api_keys()):
            raise Forbidden(f"{org} holds no partner key: webhooks carry hash values, which only organisations "
                            "that may read the change feed receive (hashdb keys create --org ... --role partner)")
        if first_sending is not None and not first_sending():
            raise AlreadySent("this form was sent already: the webhook was added then, and no second one")
        salt = secrets.token_hex(16)
        hook = self.store.add_webhook(organisation.id, url, salt, actor)
        return webhooks.signing_secret(self._secret(), salt), hook

    def list_webhooks(self, actor: Principal) -> list[Webhook]:
        policy.require(actor, "admin", "list webhooks")
        return self.store.webhooks(active_only=False)

    def remove_webhook(self, webhook_id: int, actor: Principal) -> Webhook:
        policy.require(actor, "lookup")
        hook = next((w for w in self.store.webhooks(active_only=False) if w.id == webhook_id), None)
        if hook is None or (not actor.is_admin and hook.org_id != actor.org_id):
            raise NotFound(f"no webhook with id {webhook_id}")
        return self.store.remove_webhook(webhook_id, actor)

    def delivery_log(self, actor: Principal, after_id: int = 0, limit: int = 100) -> list[DeliveryAttempt]:
        policy.require(actor, "admin", "read the webhook delivery log")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_EXPORT_PAGE}")
        return self.store.delivery_attempts(after_id, limit)

    def deliver_webhooks(self) -> delivery.DeliveryPass:
        """One delivery pass over the outbox (`hashdb webhook deliver`)."""
        return delivery.deliver_due(self.store, self._secret(), self.settings)

    def webhook_sender(self) -> delivery.Sender:
        """What the server's background delivery claims subscribers and sends with."""
        return delivery.Sender(self.store, self._secret(), self.settings)
