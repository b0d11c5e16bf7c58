"""Earthquake rounds: JMA seismic reports become per-tenant triggers; the clock starts the rounds.

A report (気象庁防災情報XML, read by `tenants.jma`) at or above a tenant's threshold in one of its
areas records a pending trigger for that earthquake (JMA EventID), due at the report's time plus
the tenant's hold, so corrections can still call it off. Later reports of the same earthquake
update its intensity; one below the threshold before the round starts cancels it, as does JMA's
取消. When a trigger falls due the clock claims it (compare-and-set on its status) and starts an
immediate round to the whole tenant — or, when another earthquake within the fold window already
started one, records it as joining that round. A report delivered twice has no second effect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from mimamori.extensions import db
from tenants import jma, messages
from tenants.models import EarthquakeTrigger, JmaReport, Tenant
from tenants.services import rounds
from tenants.services.deliveries import insert_ignoring_duplicates
from tenants.tenancy import all_tenants, bind_tenant

log = logging.getLogger(__name__)

# The reports that carry observed intensities (震度速報 by area, 震源・震度に関する情報 by area
# and municipality); others (震源に関する情報, 長周期地震動, ...) start nothing.
TITLES = ("震度速報", "震源・震度に関する情報")
# A report this much older than its receipt is a replay, not an earthquake to act on now.
STALE_AFTER = timedelta(hours=6)
SETTINGS = {"city_codes": "quake_city_codes", "area_codes": "quake_area_codes",
            "min_intensity": "quake_min_intensity", "hold_minutes": "quake_hold_minutes",
            "fold_minutes": "quake_fold_minutes"}


@dataclass
class Received:
    """What one report did: `result` for the log and the answer, and each tenant it touched."""

    result: str
    triggers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Fired:
    """What one clock pass started: the rounds, and their batch keys to queue once committed."""

    round_ids: list[int] = field(default_factory=list)
    folded: int = 0
    batch_keys: list[str] = field(default_factory=list)


def settings(tenant: Tenant) -> dict[str, Any]:
    """A tenant's earthquake subscription, as operators set it and the tenant reads it."""
    return {name: getattr(tenant, column) for name, column in SETTINGS.items()}


def apply_settings(tenant: Tenant, data: dict[str, Any]) -> None:
    for name, column in SETTINGS.items():
        if name in data:
            value = data[name]
            setattr(tenant, column, sorted(set(value)) if name.endswith("codes") else value)


def _claim_report(report: jma.Report, now: datetime) -> JmaReport | None:
    """Record the report by its identity; None when it was received before (a redelivery)."""
    report_id = db.session.scalar(insert_ignoring_duplicates(JmaReport).values(
        event_id=report.event_id, title=report.title, info_type=report.info_type,
        serial=report.serial, status=report.status, report_at=report.report_at,
        max_intensity=report.max_int, result="received", received_at=now,
    ).returning(JmaReport.id))
    return db.session.get(JmaReport, report_id) if report_id is not None else None


def receive(report: jma.Report, now: datetime) -> Received:
    """Act on one JMA report for every subscribed tenant; the caller commits."""
    stored = _claim_report(report, now)
    if stored is None:
        return Received("duplicate")
    if report.status != "通常":
        received = Received("drill" if report.status == "訓練" else "test")
    elif report.title not in TITLES:
        received = Received("unsupported_title")
    elif report.report_at < now - STALE_AFTER:
        received = Received("stale")
    elif report.info_type == "取消":
        received = _cancel(report, now)
    else:
        received = _observe(report, now)
    stored.result = received.result
    return received


def _cancel(report: jma.Report, now: datetime) -> Received:
    """JMA withdrew the report: pending triggers of that earthquake are called off."""
    with all_tenants():
        cancelled = db.session.execute(
            update(EarthquakeTrigger).where(EarthquakeTrigger.event_id == report.event_id,
                                            EarthquakeTrigger.status == "pending")
            .values(status="cancelled", cancel_reason="jma_cancelled", updated_at=now)
            .returning(EarthquakeTrigger.tenant_id, EarthquakeTrigger.id)
            .execution_options(synchronize_session=False)).all()
        started = db.session.execute(select(EarthquakeTrigger.tenant_id, EarthquakeTrigger.id).where(
            EarthquakeTrigger.event_id == report.event_id,
            EarthquakeTrigger.status.in_(("fired", "folded")))).all()
    touched = ([{"tenant_id": t, "trigger_id": i, "change": "cancelled"} for t, i in cancelled]
               + [{"tenant_id": t, "trigger_id": i, "change": "round_already_started"}
                  for t, i in started])
    return Received("cancelled" if cancelled else "nothing_to_cancel", touched)


def _subscribers() -> list[Tenant]:
    return [t for t in db.session.scalars(select(Tenant).where(Tenant.active.is_(True))
                                          .order_by(Tenant.id))
            if t.quake_city_codes or t.quake_area_codes]


def _observe(report: jma.Report, now: datetime) -> Received:
    touched = []
    for tenant in _subscribers():
        areas, cities = set(tenant.quake_area_codes), set(tenant.quake_city_codes)
        matched = [o for o in report.observations
                   if (o.code in areas if o.kind == "area" else o.code in cities)]
        if not matched:
            continue
        with bind_tenant(tenant.id):
            touched.append(_apply(tenant, report, matched, now))
    changes = {t["change"] for t in touched}
    for result in ("triggered", "cancelled", "reinstated", "updated"):
        if result in changes:
            return Received(result, touched)
    return Received("below_threshold" if touched else "no_subscribed_area", touched)


def _apply(tenant: Tenant, report: jma.Report, matched: list[jma.Observation],
           now: datetime) -> dict[str, Any]:
    """Record or update the tenant's trigger for this earthquake from one report."""
    # The strongest shaking; on a tie the municipality's name, which says more than the area's.
    strongest = max(matched, key=lambda o: (jma.rank(o.max_int), o.kind == "city"))
    reaches = jma.rank(strongest.max_int) >= jma.rank(tenant.quake_min_intensity)
    codes = sorted({o.code for o in matched})
    trigger = _trigger(report.event_id)
    if trigger is None and reaches:
        created = db.session.scalar(insert_ignoring_duplicates(EarthquakeTrigger).values(
            tenant_id=tenant.id, event_id=report.event_id, status="pending",
            max_intensity=strongest.max_int, area_name=strongest.name[:100], matched_codes=codes,
            report_at=report.report_at, last_report_at=report.report_at,
            fire_at=report.report_at + timedelta(minutes=tenant.quake_hold_minutes),
            created_at=now, updated_at=now,
        ).returning(EarthquakeTrigger.id))
        if created is not None:
            return _touched(tenant, db.session.get(EarthquakeTrigger, created), "triggered")
        trigger = _trigger(report.event_id)  # another report of it was being received at once
    if trigger is None:
        return {"tenant_id": tenant.id, "trigger_id": None, "change": "below_threshold",
                "max_intensity": strongest.max_int}
    if report.report_at < trigger.last_report_at:
        return _touched(tenant, trigger, "out_of_order")  # a newer report already spoke
    trigger.max_intensity, trigger.matched_codes = strongest.max_int, codes
    trigger.area_name = strongest.name[:100]
    trigger.last_report_at, trigger.updated_at = report.report_at, now
    if trigger.status == "pending" and not reaches:
        trigger.status, trigger.cancel_reason = "cancelled", "lowered"
        return _touched(tenant, trigger, "cancelled")
    if trigger.status == "cancelled" and trigger.cancel_reason == "lowered" and reaches:
        trigger.status, trigger.cancel_reason = "pending", None
        return _touched(tenant, trigger, "reinstated")
    return _touched(tenant, trigger, "updated")


def _trigger(event_id: str) -> EarthquakeTrigger | None:
    return db.session.scalar(select(EarthquakeTrigger).where(EarthquakeTrigger.event_id == event_id)
                             .with_for_update())


def _touched(tenant: Tenant, trigger: EarthquakeTrigger, change: str) -> dict[str, Any]:
    return {"tenant_id": tenant.id, "trigger_id": trigger.id, "change": change,
            "status": trigger.status, "max_intensity": trigger.max_intensity,
            "fire_at": trigger.fire_at}


def fire_due(tenant: Tenant, now: datetime) -> Fired:
    """Start the round of every trigger whose hold has ended, each exactly once (the caller
    commits, then queues `batch_keys`); an aftershock within the fold window joins the round."""
    fired = Fired()
    due = db.session.scalars(select(EarthquakeTrigger.id).where(
        EarthquakeTrigger.status == "pending", EarthquakeTrigger.fire_at <= now)
        .order_by(EarthquakeTrigger.report_at, EarthquakeTrigger.id)).all()
    if not due:
        return fired
    # One clock at a time per tenant from here to its commit, so an aftershock falling due in
    # the same minute sees the round its main shock started (SQLite serialises writers anyway).
    db.session.execute(select(Tenant.id).where(Tenant.id == tenant.id).with_for_update())
    for trigger_id in due:
        claimed = db.session.execute(
            update(EarthquakeTrigger).where(EarthquakeTrigger.id == trigger_id,
                                            EarthquakeTrigger.status == "pending",
                                            EarthquakeTrigger.fire_at <= now)
            .values(status="fired", fired_at=now, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if not claimed:
            continue  # another clock fired it, or a correction called it off
        trigger = db.session.get(EarthquakeTrigger, trigger_id)
        assert trigger is not None
        db.session.refresh(trigger)
        _fire(tenant, trigger, now, fired)
        db.session.flush()
    return fired


def _fire(tenant: Tenant, trigger: EarthquakeTrigger, now: datetime, fired: Fired) -> None:
    fold = timedelta(minutes=tenant.quake_fold_minutes)
    started = db.session.scalar(select(EarthquakeTrigger).where(
        EarthquakeTrigger.status == "fired", EarthquakeTrigger.round_id.is_not(None),
        EarthquakeTrigger.id != trigger.id,
        EarthquakeTrigger.report_at >= trigger.report_at - fold,
        EarthquakeTrigger.report_at <= trigger.report_at + fold,
    ).order_by(EarthquakeTrigger.report_at.desc()).limit(1))
    if started is not None:
        trigger.status, trigger.round_id, trigger.folded_into_id = "folded", started.round_id, started.id
        fired.folded += 1
        log.info("earthquake_trigger result=folded trigger=%s event_id=%s round=%s",
                 trigger.id, trigger.event_id, started.round_id,
                 extra={"earthquake": {"result": "folded", "trigger": trigger.id,
                                       "event_id": trigger.event_id, "round": started.round_id}})
        return
    text = messages.earthquake_text(trigger.area_name, jma.label(trigger.max_intensity))
    round_, planned = rounds.start_round(tenant, text, None, now, trigger="earthquake")
    trigger.round_id = round_.id
    fired.round_ids.append(round_.id)
    fired.batch_keys += planned.batch_keys
    log.info("earthquake_trigger result=round_started trigger=%s event_id=%s round=%s targeted=%s",
             trigger.id, trigger.event_id, round_.id, round_.targeted,
             extra={"earthquake": {"result": "round_started", "trigger": trigger.id,
                                   "event_id": trigger.event_id, "round": round_.id,
                                   "targeted": round_.targeted}})
