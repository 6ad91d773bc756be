"""The dashboard: records by month, label, status and signal; lookups and matches over time;
queue sizes and open incidents (admins)."""

from __future__ import annotations

import time

from flask import render_template

from hashdb.api.runtime import get_service
from hashdb.api.ui import charts
from hashdb.api.ui.activity import activity
from hashdb.api.ui.bp import bp
from hashdb.api.ui.session import me


@bp.get("/")
def dashboard() -> str:
    principal = me()
    service = get_service()
    counts = service.stats(principal)  # what GET /v1/stats answers
    panels = [charts.bars(title, counts.get(key, {})) for key, title in
              (("month", "Records by month (created)"), ("label", "Live records by label"),
               ("status", "Records by status"), ("signal", "Records by signal"))]
    samples = activity().samples()
    stamps = [time.strftime("%H:%M", time.gmtime(s.at)) for s in samples]
    traffic = charts.lines("Lookups and matches since this worker started (cumulative)", stamps,
                           {"lookups": [s.lookups for s in samples], "matches": [s.matches for s in samples]})
    open_incidents = service.list_incidents(principal, open_only=True) if principal.is_admin else []
    status = counts.get("status", {})
    return render_template(
        "dashboard.html", panels=panels, traffic=traffic,
        last=samples[-1], queues={"quarantined": status.get("quarantined", 0), "disputed": status.get("disputed", 0)},
        open_incidents=open_incidents)
