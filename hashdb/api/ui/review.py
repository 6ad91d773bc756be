"""Review queues: quarantined records with their rule and reason; disputed records with every
organisation's vote and note. Admins only, as in the API."""

from __future__ import annotations

from flask import render_template, request

from hashdb.api.runtime import get_service
from hashdb.api.ui.bp import bp
from hashdb.api.ui.forms import optional_int
from hashdb.api.ui.session import me

PAGE = 50


@bp.get("/review/quarantined")
def quarantined() -> str:
    after = optional_int("after") or 0
    items = get_service().quarantined(me(), after, PAGE + 1)
    more = len(items) > PAGE
    items = items[:PAGE]
    return render_template("quarantined.html", items=items, after=after,
                           next_after=items[-1].record.id if more else None)


@bp.get("/review/disputed")
def disputed() -> str:
    page, votes = get_service().disputed(me(), optional_int("before"), PAGE)
    return render_template("disputed.html", page=page, votes=votes, first=not request.args.get("before"))
