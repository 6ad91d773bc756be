"""The console's one blueprint, under /ui; page modules add their routes to it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates", static_folder="static",
               static_url_path="/static")
