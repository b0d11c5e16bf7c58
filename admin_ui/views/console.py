"""The operator console (運営者): tenants across the platform, without residents' personal data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import redis
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired

from admin_ui import earthquake_settings as quake_form
from admin_ui.labels import DELIVERY_STATUS_LABELS, PURPOSE_LABELS
from admin_ui.records import found_or_404
from admin_ui.session import operator_blueprint
from mimamori.extensions import db
from schemas.tenants import TenantIn, TenantUpdate
from tenants.errors import Conflict
from tenants.models import Tenant
from tenants.services import earthquakes, platform
from tenants.services.tenants import get_tenant
from tenants.types import utcnow
from worker import connections, status

blueprint = operator_blueprint("console", __name__)

KIND_LABELS = {"municipality": _l("自治体"), "welfare_council": _l("社会福祉協議会")}
CHANNEL_LABELS = {"line": "LINE", "sms": "SMS", "voice": _l("電話")}
WORKER_STATE_LABELS = {"idle": _l("待機中"), "busy": _l("処理中"), "started": _l("起動中"),
                       "suspended": _l("一時停止"), "dequeue": _l("取り出し中")}
FAILURE_WINDOW = timedelta(hours=24)

# Where each schema error lands on the form, and what its rule means, said in Japanese.
_ERROR_FIELDS = {
    ("slug",): "slug", ("name",): "name", ("kind",): "kind", ("timezone",): "timezone",
    ("quiet_hours", "start"): "quiet_start", ("quiet_hours", "end"): "quiet_end",
    ("max_residents",): "max_residents", ("twilio_calls_per_second",): "twilio_calls_per_second",
    ("line", "channel_secret"): "line_channel_secret",
    ("line", "channel_access_token"): "line_channel_access_token",
    ("twilio", "account_sid"): "twilio_account_sid", ("twilio", "auth_token"): "twilio_auth_token",
    ("twilio", "from_number"): "twilio_from_number",
}
_LINE_BOTH = _l("LINE はチャネルシークレットとチャネルアクセストークンの両方が必要です。")
_TWILIO_ALL = _l("Twilio はアカウントSID・Auth Token・発信元の電話番号の3つが必要です。")
FIELD_MESSAGES = {
    "slug": _l("半角英小文字・数字・ハイフンで63文字までにしてください(例: musashino)。"),
    "name": _l("名称を入力してください(200文字まで)。"),
    "kind": _l("種別を選んでください。"),
    "timezone": _l("タイムゾーンは IANA の名前で入力してください(例: Asia/Tokyo)。"),
    "quiet_start": _l("時刻を 21:00 のように入力してください。"),
    "quiet_end": _l("時刻を 08:00 のように入力してください。"),
    "max_residents": _l("1以上の整数を入力してください(空欄は上限なし)。"),
    "twilio_calls_per_second": _l("1から100までの整数を入力してください。"),
    "line_channel_secret": _LINE_BOTH,
    "line_channel_access_token": _LINE_BOTH,
    "twilio_account_sid": _l("アカウントSIDは AC で始まります。Twilio はアカウントSID・Auth Token・"
                             "発信元の電話番号の3つが必要です。"),
    "twilio_auth_token": _TWILIO_ALL,
    "twilio_from_number": _l("電話番号の形式が正しくありません(例: 050-1234-5678)。Twilio はアカウント"
                             "SID・Auth Token・発信元の電話番号の3つが必要です。"),
}


SECRET_INPUTS = ("line_channel_secret", "line_channel_access_token", "twilio_account_sid",
                 "twilio_auth_token")


class TenantForm(quake_form.EarthquakeFields):
    """A tenant's settings (its earthquake subscription too); secrets are typed, never shown:
    blank keeps what is stored."""

    name = StringField(_l("名称"), validators=[DataRequired(message=FIELD_MESSAGES["name"])])
    kind = SelectField(_l("種別"), choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()])
    timezone = StringField(_l("タイムゾーン"), default="Asia/Tokyo")
    quiet_start = StringField(_l("夜間(電話をかけない時間)の開始"), default="21:00",
                              render_kw={"type": "time"})
    quiet_end = StringField(_l("夜間(電話をかけない時間)の終了"), default="08:00",
                            render_kw={"type": "time"})
    max_residents = StringField(_l("利用者数の上限"), render_kw={"inputmode": "numeric"})
    twilio_calls_per_second = StringField(_l("1秒あたりの発信数(電話)"), default="1",
                                          render_kw={"inputmode": "numeric"})
    line_channel_secret = PasswordField(_l("チャネルシークレット"),
                                        render_kw={"autocomplete": "off"})
    line_channel_access_token = PasswordField(_l("チャネルアクセストークン"),
                                              render_kw={"autocomplete": "off"})
    twilio_account_sid = PasswordField(_l("アカウントSID"), render_kw={"autocomplete": "off"})
    twilio_auth_token = PasswordField(_l("Auth Token"), render_kw={"autocomplete": "off"})
    twilio_from_number = StringField(_l("発信元の電話番号"), render_kw={"autocomplete": "off"})


class NewTenantForm(TenantForm):
    slug = StringField(_l("識別子(URL に使われます)"), validators=[
        DataRequired(message=FIELD_MESSAGES["slug"])])


class EditTenantForm(TenantForm):
    active = BooleanField(_l("有効(チェックを外すと停止)"))


def _number(value: str | None) -> Any:
    """A whole number as the schema wants it; anything else goes on for the schema to refuse."""
    text = (value or "").strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def _payload(form: TenantForm, tenant: Tenant | None) -> tuple[dict[str, Any], list[str]]:
    credentials, rotated = platform.credential_changes(tenant, {
        "line": {"channel_secret": form.line_channel_secret.data,
                 "channel_access_token": form.line_channel_access_token.data},
        "twilio": {"account_sid": form.twilio_account_sid.data,
                   "auth_token": form.twilio_auth_token.data,
                   "from_number": form.twilio_from_number.data},
    })
    payload: dict[str, Any] = {
        "name": form.name.data, "kind": form.kind.data,
        "timezone": (form.timezone.data or "").strip(),
        "quiet_hours": {"start": form.quiet_start.data, "end": form.quiet_end.data},
        "max_residents": _number(form.max_residents.data),
        "twilio_calls_per_second": _number(form.twilio_calls_per_second.data),
        "earthquake": quake_form.payload(form),
        **credentials,
    }
    if isinstance(form, NewTenantForm):
        payload["slug"] = (form.slug.data or "").strip()
    if isinstance(form, EditTenantForm):
        payload["active"] = form.active.data
    return payload, rotated


def _show_errors(form: TenantForm, messages: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    for key, value in messages.items():
        if isinstance(value, dict):
            _show_errors(form, value, (*path, key))
            continue
        name = _ERROR_FIELDS.get((*path, key))
        if name is None:
            flash(" ".join(str(v) for v in value), "error")
        elif FIELD_MESSAGES[name] not in form[name].errors:
            form[name].errors.append(FIELD_MESSAGES[name])


def _save(form: TenantForm, tenant: Tenant | None) -> Tenant | None:
    """Validate with the API's schema and save through the service; None when refused."""
    payload, rotated = _payload(form, tenant)
    try:
        if tenant is None:
            return platform.provision_tenant(TenantIn().load(payload), current_user.id)
        data = TenantUpdate(partial=("line", "twilio", "on_duty")).load(payload)
        return platform.change_tenant(tenant, data, rotated, current_user.id)
    except ValidationError as exc:
        messages = dict(exc.messages_dict)
        quake_form.show_errors(form, messages.pop("earthquake", {}), payload["earthquake"])
        _show_errors(form, messages)
    except Conflict:
        db.session.rollback()
        form["slug"].errors.append(_("この識別子はすでに使われています。"))
    return None


def _form_page(form: TenantForm, tenant: Tenant | None) -> Any:
    """The form, or the form sent back with what to correct (422)."""
    if not form.is_submitted():
        return render_template("console/tenant_form.html", form=form, edited=tenant)
    # Typed secrets are never shown again, not even on a form sent back: say so.
    if any(form[name].data for name in SECRET_INPUTS):
        flash(_("保存していません。安全のため、シークレットとトークンはもう一度入力してください。"),
              "error")
    return render_template("console/tenant_form.html", form=form, edited=tenant), 422


@blueprint.get("/")
def tenants() -> Any:
    return render_template("console/tenants.html", rows=platform.tenant_overview(),
                           kinds=KIND_LABELS)


@blueprint.route("/tenants/new", methods=["GET", "POST"])
def new_tenant() -> Any:
    form = NewTenantForm()
    if form.validate_on_submit():
        tenant = _save(form, None)
        if tenant is not None:
            db.session.commit()
            flash(_("%(name)s を作成しました。", name=tenant.name), "success")
            return redirect(url_for("console.tenants"))
    return _form_page(form, None)


@blueprint.route("/tenants/<id:tenant_id>", methods=["GET", "POST"])
def edit_tenant(tenant_id: int) -> Any:
    tenant = found_or_404(get_tenant, tenant_id)
    form = EditTenantForm(data={
        "name": tenant.name, "kind": tenant.kind, "timezone": tenant.timezone,
        "quiet_start": tenant.quiet_hours_start.strftime("%H:%M"),
        "quiet_end": tenant.quiet_hours_end.strftime("%H:%M"),
        "max_residents": str(tenant.max_residents or ""),
        "twilio_calls_per_second": str(tenant.twilio_calls_per_second),
        "twilio_from_number": tenant.twilio_from_number or "", "active": tenant.active,
        **quake_form.form_data(earthquakes.settings(tenant)),
    })
    if form.validate_on_submit() and _save(form, tenant) is not None:
        db.session.commit()
        flash(_("%(name)s の設定を保存しました。", name=tenant.name), "success")
        return redirect(url_for("console.edit_tenant", tenant_id=tenant.id))
    return _form_page(form, tenant)


@blueprint.post("/tenants/<id:tenant_id>/test/<provider>")
def test_connection(tenant_id: int, provider: str) -> Any:
    """Call LINE's bot-info or Twilio's account endpoint with the stored credentials."""
    tenant = found_or_404(get_tenant, tenant_id)
    config = current_app.config
    if provider == "line" and tenant.line_configured:
        result = connections.probe_line(config["LINE_API_BASE_URL"],
                                        tenant.line_channel_access_token or "")
    elif provider == "twilio" and tenant.twilio_configured:
        result = connections.probe_twilio(config["TWILIO_API_BASE_URL"],
                                          tenant.twilio_account_sid or "",
                                          tenant.twilio_auth_token or "")
    else:
        abort(404)
    platform.record_connection_test(tenant, provider, result.ok, current_user.id)
    db.session.commit()
    label = "LINE" if provider == "line" else "Twilio"
    if result.ok:
        flash(_("%(provider)s: 接続できました — %(detail)s", provider=label, detail=result.detail),
              "success")
    else:
        flash(_("%(provider)s: 接続できませんでした — %(detail)s", provider=label,
                detail=result.detail), "error")
    return redirect(url_for("console.edit_tenant", tenant_id=tenant.id))


def _month(value: str | None) -> date:
    today = utcnow().astimezone(platform.PLATFORM_ZONE).date().replace(day=1)
    if not value:
        return today
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        flash(_("対象月は 2026-04 のように指定してください。"), "error")
        return today


@blueprint.get("/usage")
def usage() -> Any:
    month = _month(request.args.get("month"))
    rows = platform.usage(month)
    totals = {
        "line": sum(r.channels["line"].accepted for r in rows),
        "sms": sum(r.channels["sms"].segments for r in rows),
        "voice": sum(r.channels["voice"].accepted for r in rows),
    }
    return render_template("console/usage.html", month=month, rows=rows, totals=totals,
                           channels=CHANNEL_LABELS, statuses=DELIVERY_STATUS_LABELS)


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return _("%(n)s秒", n=seconds)
    if seconds < 3600:
        return _("%(n)s分", n=seconds // 60)
    if seconds < 86400:
        return _("%(n)s時間", n=seconds // 3600)
    return _("%(n)s日", n=seconds // 86400)


def _figures() -> dict[str, Any]:
    """The queues and workers now; Redis being down is itself a finding."""
    now = utcnow()
    if not current_app.config.get("REDIS_URL"):
        return {"now": now, "error": "REDIS_URL", "queues": [], "workers": []}
    try:
        queues, workers = status.queue_status(), status.worker_status(now)
    except redis.RedisError as exc:
        return {"now": now, "error": type(exc).__name__, "queues": [], "workers": []}
    return {"now": now, "error": None, "queues": queues, "workers": workers}


def _summary(figures: dict[str, Any]) -> dict[str, str]:
    """The headline figures, as the page shows them and app.js refreshes them."""
    now, queues, workers = figures["now"], figures["queues"], figures["workers"]
    ages = [age for age in (q.oldest_age(now) for q in queues) if age is not None]
    return {
        "depth": str(sum(q.depth for q in queues)),
        "oldest": _ago(max(ages).total_seconds()) if ages else "—",
        "workers": str(sum(not w.stale for w in workers)),
        "failures": str(platform.failures_since(now - FAILURE_WINDOW)),
    }


@blueprint.get("/health")
def health() -> Any:
    figures = _figures()
    return render_template("console/health.html", **figures, summary=_summary(figures), ago=_ago,
                           failures=platform.recent_failures(), channels=CHANNEL_LABELS,
                           purposes=PURPOSE_LABELS, statuses=DELIVERY_STATUS_LABELS,
                           worker_states=WORKER_STATE_LABELS)


@blueprint.get("/health.json")
def health_figures() -> Any:
    """The health page's live figures (refreshed in place by app.js)."""
    return _summary(_figures())
