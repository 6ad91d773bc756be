"""Crisis protocol commands: incidents, and the webhooks that announce hashes shared under one."""

from __future__ import annotations

import click

from hashdb.cli.common import (
    AFTER_ID,
    RECORD_ID,
    cli,
    db_option,
    emit,
    emit_rows,
    escaped,
    json_option,
    local_principal,
    open_service,
)


@cli.group()
def incident() -> None:
    """Crisis incidents: submissions may be tagged with an open one; subscribers are notified.

    \b
    Example:
        hashdb incident open christchurch-2019 --description "live-streamed attack"
        hashdb submit attack.mp4 --label imminent_threat --incident christchurch-2019
    """


@incident.command("open")
@click.argument("name")
@click.option("--description", default="", help="What happened, for members.")
@db_option
@json_option
def incident_open(name: str, description: str, db_path: str, as_json: bool) -> None:
    """Open an incident (admins). Submissions then name it with --incident NAME or its id.

    \b
    Example:
        hashdb incident open attack-2026-03 --description "live-streamed attack, Example City"
    """
    from hashdb.io import output

    service = open_service(db_path, create=True)
    item = service.open_incident(name, local_principal(service, "local"), description)
    emit(as_json, output.incident_json(item), f"incident {item.id} {item.name!r} open")


@incident.command("close")
@click.argument("incident")
@db_option
@json_option
def incident_close(incident: str, db_path: str, as_json: bool) -> None:
    """Close an incident, by name or id: new submissions may no longer name it.

    \b
    Example:
        hashdb incident close attack-2026-03
        hashdb incident close 3
    """
    from hashdb.io import output

    service = open_service(db_path)
    item = service.close_incident(incident, local_principal(service, "local"))
    emit(as_json, output.incident_json(item), f"incident {item.id} {item.name!r} closed")


@incident.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only open incidents.")
@db_option
@json_option
def incident_list(open_only: bool, db_path: str, as_json: bool) -> None:
    """List incidents.

    \b
    Example:
        hashdb incident list --open --json
    """
    from hashdb.io import output

    service = open_service(db_path)
    emit_rows(as_json, ((output.incident_json(item),
                         f"{item.id}  {item.name}  {item.status}  {escaped(item.description)}")
                        for item in service.list_incidents(local_principal(service, "local"), open_only)),
              "no open incidents" if open_only else "no incidents")


@cli.group()
def webhook() -> None:
    """Webhooks: new hashes under an open incident are POSTed, signed, to each subscriber.

    \b
    Example:
        hashdb webhook add https://hooks.example.org/hashdb --org example-platform
        hashdb webhook log
    """


# `webhooks` (the plural) still works for scripts written against it, but is not listed: one
# name in --help. The alias shares the group's command table, so it never falls behind.
cli.add_command(click.Group("webhooks", commands=webhook.commands, hidden=True, help=webhook.help))


@webhook.command("add")
@click.argument("url")
@click.option("--org", required=True, help="Subscribing organisation.")
@db_option
@json_option
def webhook_add(url: str, org: str, db_path: str, as_json: bool) -> None:
    """Subscribe an organisation; prints the signing secret once.

    Verify each request: HMAC-SHA256(secret, X-Hashdb-Timestamp + "." + body) must equal
    X-Hashdb-Signature (sha256=<hex>); refuse timestamps older than 5 minutes.

    \b
    Example:
        hashdb webhook add --org example-platform https://hooks.example.com/hashdb
    """
    service = open_service(db_path, create=True)
    secret, hook = service.add_webhook(org, url, local_principal(service, "local"))
    emit(as_json, {"id": hook.id, "org": hook.org_name, "url": hook.url, "secret": secret},
         f"{secret}\n(webhook {hook.id} for {hook.org_name}: store the secret now, it is not shown again)")


@webhook.command("list")
@db_option
@json_option
def webhook_list(db_path: str, as_json: bool) -> None:
    """List webhooks (secrets are never shown).

    \b
    Example:
        hashdb webhook list --json
    """
    service = open_service(db_path)
    emit_rows(as_json, (({"id": hook.id, "org": hook.org_name, "url": hook.url, "created_at": hook.created_at,
                          "disabled_at": hook.disabled_at, "receives": hook.receives},
                         f"{hook.id}  {hook.org_name}  {hook.url}  "
                         + (f"removed {hook.disabled_at}" if hook.disabled_at else
                            "active" if hook.receives else "active, sent nothing: its organisation holds no live "
                                                           "partner key"))
                        for hook in service.list_webhooks(local_principal(service, "local"))),
              "no webhooks")


@webhook.command("remove")
@click.argument("webhook_id", type=RECORD_ID)
@db_option
@json_option
def webhook_remove(webhook_id: int, db_path: str, as_json: bool) -> None:
    """Stop delivering to a webhook (its pending deliveries are dropped).

    \b
    Example:
        hashdb webhook remove 2
    """
    service = open_service(db_path)
    hook = service.remove_webhook(webhook_id, local_principal(service, "local"))
    emit(as_json, {"id": hook.id, "disabled_at": hook.disabled_at}, f"{hook.id}: removed")


@webhook.command("deliver")
@db_option
@json_option
def webhook_deliver(db_path: str, as_json: bool) -> None:
    """Send every delivery that is due, once (a server does this in the background).

    \b
    Example:
        hashdb webhook deliver
    """
    service = open_service(db_path)
    done = service.deliver_webhooks()
    emit(as_json, {"attempted": done.attempted, "delivered": done.delivered, "retrying": done.retrying,
                   "failed": done.failed},
         f"{done.attempted} attempted: {done.delivered} delivered, {done.retrying} to retry, {done.failed} gave up")


@webhook.command("log")
@click.option("--after", "after_id", type=AFTER_ID, default=0, show_default=True, help="Attempts after this id.")
@click.option("--limit", type=int, default=100, show_default=True)
@db_option
@json_option
def webhook_log(after_id: int, limit: int, db_path: str, as_json: bool) -> None:
    """Every delivery attempt: when, which webhook and record, the HTTP status or the error.

    \b
    Example:
        hashdb webhook log --json
    """
    service = open_service(db_path)
    emit_rows(as_json, (({"attempt": a.attempt_id, "delivery": a.delivery_id, "webhook": a.webhook_id,
                          "record": a.record_id, "at": a.at, "status_code": a.status_code, "error": a.error,
                          "ms": a.duration_ms},
                         f"{a.attempt_id}  {a.at}  webhook {a.webhook_id}  record {a.record_id}  "
                         f"{a.status_code or '-'}  {a.error}")
                        for a in service.delivery_log(local_principal(service, "local"), after_id, limit)),
              "no delivery attempts" + (f" after id {after_id}" if after_id else " yet"), page=limit,
              cursor="attempt")
