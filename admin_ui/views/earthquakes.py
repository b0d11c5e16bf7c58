"""Earthquake rounds (地震): the tenant's subscription to JMA seismic reports, and what each
earthquake that reached it decided (round started, held, folded, called off)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from admin_ui import earthquake_settings as quake_form
from admin_ui.audit_trail import audit
from admin_ui.session import can, requires, tenant_blueprint
from admin_ui.support import error_summary
from mimamori.extensions import db
from tenants.models import EarthquakeTrigger, JmaReport
from tenants.services import earthquakes as service

blueprint = tenant_blueprint("earthquakes", __name__)
blueprint.context_processor(lambda: {"shindo": quake_form.shindo})

EVENTS_SHOWN = 50

# What a trigger's state means for the tenant; a cancelled one says why.
DECISIONS = {
    "pending": ("…", _l("開始待ち")),
    "fired": ("✓", _l("一斉安否確認を開始")),
    "folded": ("＋", _l("先の地震の一斉安否確認にまとめた(余震)")),
    "lowered": ("－", _l("訂正で基準の震度を下回り、中止")),
    "jma_cancelled": ("✕", _l("気象庁の取消により中止")),
}


def reports_by_event(event_ids: list[str]) -> dict[str, list[JmaReport]]:
    """The JMA reports received for these earthquakes (platform-wide; they hold no personal data)."""
    found: dict[str, list[JmaReport]] = {}
    if event_ids:
        for report in db.session.scalars(select(JmaReport).where(JmaReport.event_id.in_(event_ids))
                                         .order_by(JmaReport.report_at, JmaReport.id)):
            found.setdefault(report.event_id, []).append(report)
    return found


def decision(trigger: EarthquakeTrigger) -> tuple[str, Any]:
    key = trigger.cancel_reason if trigger.status == "cancelled" else trigger.status
    return DECISIONS.get(key or "", ("?", trigger.status))


def _page(form: quake_form.EarthquakeFields, status: int = 200) -> Any:
    settings = service.settings(g.tenant)
    triggers = db.session.scalars(select(EarthquakeTrigger).order_by(
        EarthquakeTrigger.report_at.desc(), EarthquakeTrigger.id.desc()).limit(EVENTS_SHOWN)).all()
    reports = reports_by_event([t.event_id for t in triggers])
    events = [{"trigger": t, "decision": decision(t), "reports": reports.get(t.event_id, []),
               "corrected": any(r.info_type == "訂正" for r in reports.get(t.event_id, []))}
              for t in triggers]
    return render_template("earthquakes/index.html", form=form, settings=settings,
                           subscribed=quake_form.subscribed(settings), events=events,
                           errors=error_summary([form]) if can("manage") else []), status


@blueprint.get("/earthquakes")
@requires("write")
def index() -> Any:
    return _page(quake_form.EarthquakeFields(data=quake_form.form_data(service.settings(g.tenant)),
                              formdata=None))


@blueprint.post("/earthquakes")
@requires("manage")
def save() -> Any:
    """Change the areas, the threshold, the hold and the fold window; nothing is saved on an error."""
    form = quake_form.EarthquakeFields()
    data = quake_form.load(form) if form.validate() else None
    if data is None:
        return _page(form, 422)
    service.apply_settings(g.tenant, data)
    audit("earthquake.settings", g.tenant, detail=service.settings(g.tenant))
    db.session.commit()
    flash(_("地震の設定を保存しました。"), "success")
    return redirect(url_for("earthquakes.index"))
