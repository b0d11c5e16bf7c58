"""Earthquake rounds: operators post JMA seismic reports (気象庁防災情報XML); tenants read their
subscription and the triggers the reports recorded."""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.auth import require_operator, require_tenant
from api.errors import problem
from api.pagination import paginate
from mimamori.extensions import db
from schemas.common import PageArgs
from schemas.earthquakes import EarthquakeSettings, JmaResultOut, TriggerPage
from tenants import jma
from tenants.errors import DomainError
from tenants.models import EarthquakeTrigger
from tenants.services import earthquakes as service
from tenants.services.policies import bound_tenant
from tenants.types import utcnow

log = logging.getLogger(__name__)

# JMA's largest seismic reports (a great earthquake's 震源・震度に関する情報) are under a megabyte.
MAX_REPORT_BYTES = 5 * 1024 * 1024
XML_TYPES = ("application/xml", "text/xml")

reports = Blueprint("earthquakes_jma", __name__, url_prefix="/api/v1/earthquakes",
                    description="JMA seismic intensity reports (operators only).")
reports.before_request(require_operator)
subscription = Blueprint("earthquakes", __name__, url_prefix="/api/v1/earthquakes",
                         description="The tenant's earthquake subscription and triggers.")
subscription.before_request(require_tenant)
blueprints = [reports, subscription]


def _log(level: int, result: str, **fields: Any) -> None:
    """One key=value line per report: its identity and what it did, no personal data."""
    values = {"result": result, **fields}
    log.log(level, "jma_report " + " ".join(f"{k}={v!s}" for k, v in values.items()),
            extra={"jma": values})


@reports.route("/jma")
class JmaReports(MethodView):
    @reports.response(200, JmaResultOut)
    @reports.doc(requestBody={"required": True, "content": {
        "application/xml": {"schema": {"type": "string"}}}})
    def post(self) -> Any:
        """Take one JMA seismic report (the XML document itself, application/xml).

        震度速報 and 震源・震度に関する情報 at or above a tenant's threshold in one of its areas
        record a trigger; the round starts after the tenant's hold unless a correction (訂正)
        lowers it below the threshold or JMA cancels (取消) it. Drills (訓練) and tests (試験)
        are recorded and ignored; the same report posted twice has no second effect."""
        if request.mimetype not in XML_TYPES:
            _log(logging.WARNING, "unsupported_media_type")
            return problem(415, "Unsupported Media Type", "Send the JMA document as application/xml.")
        if (request.content_length or 0) > MAX_REPORT_BYTES:
            _log(logging.WARNING, "too_large")
            return problem(413, "Content Too Large", f"Reports are limited to {MAX_REPORT_BYTES} bytes.")
        try:
            report = jma.parse(request.get_data(cache=False))
        except jma.MalformedReport as exc:
            _log(logging.WARNING, "malformed", reason=str(exc)[:200])
            raise DomainError("not a JMA report this service can read",
                              {"body": [str(exc)[:200]]}) from exc
        received = service.receive(report, utcnow())
        db.session.commit()
        _log(logging.WARNING if received.result in ("duplicate", "stale") else logging.INFO,
             received.result, event_id=report.event_id, title=report.title, status=report.status,
             info_type=report.info_type, serial=report.serial or "-",
             max_intensity=report.max_int or "-", tenants=len(received.triggers),
             triggers=",".join(str(t["trigger_id"]) for t in received.triggers if t["trigger_id"])
             or "-")
        return {"event_id": report.event_id, "title": report.title, "status": report.status,
                "info_type": report.info_type, "serial": report.serial,
                "report_at": report.report_at, "max_intensity": report.max_int,
                "result": received.result, "triggers": received.triggers}


@subscription.route("/settings")
class Settings(MethodView):
    @subscription.response(200, EarthquakeSettings)
    def get(self) -> Any:
        """The tenant's areas (municipality and seismic intensity area codes), the intensity
        that starts a round, the hold and the fold window (operators change them)."""
        return service.settings(bound_tenant())


@subscription.route("/triggers")
class Triggers(MethodView):
    @subscription.arguments(PageArgs, location="query")
    @subscription.response(200, TriggerPage)
    def get(self, args: dict[str, Any]) -> Any:
        """Earthquakes that reached the tenant's threshold: pending, cancelled, fired (with the
        round they started) or folded into an earlier earthquake's round."""
        return paginate(select(EarthquakeTrigger), EarthquakeTrigger, args)
