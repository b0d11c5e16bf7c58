"""Monthly statistics for council reports: charts drawn on the server, a table, a CSV export.

The figures come from tenants.services.stats; the page and the CSV show the same numbers, and
every export is in the audit log.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Response, flash, g, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from admin_ui.audit_trail import audit
from admin_ui.charts import Point, bar_chart, line_chart
from admin_ui.i18n import long_date
from admin_ui.session import requires, tenant_blueprint
from mimamori.extensions import db
from tenants.csv_safe import csv_text
from tenants.services import stats as service
from tenants.services.stats import MonthlyStats

blueprint = tenant_blueprint("stats", __name__)

INCIDENT_LABELS = {"safe": _l("無事"), "hospitalised": _l("入院"), "deceased": _l("死亡"),
                   "unreachable": _l("連絡がとれない"), "false_alarm": _l("誤報"),
                   "other": _l("その他"), "acknowledged": _l("対応中(未解決)"),
                   "open": _l("未対応(未解決)")}
AGE_LABELS = {"under_65": _l("65歳未満"), "65_74": _l("65〜74歳"), "75_84": _l("75〜84歳"),
              "85_plus": _l("85歳以上"), "unknown": _l("生年月日の登録なし")}
CHANNEL_LABELS = {"line": "LINE", "sms": "SMS", "voice": _l("電話"), "none": _l("連絡手段なし")}
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")


def _month_arg() -> date:
    """?month=YYYY-MM, or this month in the tenant's zone."""
    match = _MONTH.match(request.args.get("month", "").strip())
    if match and 1 <= int(match[2]) <= 12 and 2000 <= int(match[1]) <= 2100:
        return date(int(match[1]), int(match[2]), 1)
    if request.args.get("month"):
        flash(_("月は 2026-11 のように指定してください。今月を表示しています。"), "error")
    return service.first_of_month(g.tenant.local_today())


def month_label(month: date) -> str:
    if str(get_locale()) == "ja":
        return f"{month.year}年{month.month}月"
    return month.strftime("%B %Y")


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def minutes(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}".removesuffix(".0")


def _bars(figures: dict[str, int], labels: dict[str, Any], say: Any) -> tuple[str, list[Any]]:
    """A bar chart's description (every value, for screen readers) and its bars."""
    desc = "、".join(f"{labels[key]} {say(count)}" for key, count in figures.items())
    return desc, [(str(labels[key]), count) for key, count in figures.items()]


def _cases(n: float) -> str:
    return _("%(n)s件", n=int(n))


def _people(n: float) -> str:
    return _("%(n)s人", n=int(n))


def _charts(figures: MonthlyStats) -> dict[str, Any]:
    month = month_label(figures.month)
    points = [Point(_("%(d)s日", d=day.day.day), day.rate,
                    _("%(date)s 応答率 %(rate)s%%(%(answered)s/%(checks)s件)",
                      date=long_date(day.day), rate=percent(day.rate) or "—",
                      answered=day.answered, checks=day.checks))
              for day in figures.days]
    incidents = _bars(figures.incidents, INCIDENT_LABELS, _cases)
    ages = _bars(figures.age_bands, AGE_LABELS, _people)
    channels = _bars(figures.first_channels, CHANNEL_LABELS, _people)
    return {
        "rate": line_chart(
            "chart-rate", _("%(month)sの日別応答率", month=month),
            _("1日ごとの定期安否確認の応答率。月全体では %(rate)s%%(%(answered)s/%(checks)s件)。",
              rate=percent(figures.rate) or "—", answered=figures.answered,
              checks=figures.checks), points),
        "incidents": bar_chart("chart-incidents", _("%(month)sの未確認案件(結果別)", month=month),
                               *incidents, say=_cases),
        "ages": bar_chart("chart-ages", _("年齢層別の利用者"), *ages, say=_people),
        "channels": bar_chart("chart-channels", _("最初の連絡手段別の利用者"), *channels,
                              say=_people),
    }


def csv_rows(figures: MonthlyStats) -> list[list[Any]]:
    """The page's figures as a spreadsheet: one block per table, a blank row between blocks."""
    rows: list[list[Any]] = [
        [_("見守り 月次統計"), g.tenant.name, month_label(figures.month)], [],
        [_("項目"), _("値")],
        [_("安否確認(件)"), figures.checks],
        [_("応答あり(件)"), figures.answered],
        [_("応答率(%)"), percent(figures.rate)],
        [_("応答までの時間・中央値(分)"), minutes(figures.median_answer_minutes)],
        [_("利用者(人)"), figures.residents], [],
        [_("日付"), _("安否確認(件)"), _("応答あり(件)"), _("応答率(%)")],
    ]
    rows += [[day.day.isoformat(), day.checks, day.answered, percent(day.rate)]
             for day in figures.days]
    rows += [[], [_("未確認案件の結果"), _("件数")]]
    rows += [[str(INCIDENT_LABELS[k]), v] for k, v in figures.incidents.items()]
    rows += [[], [_("年齢層"), _("人数")]]
    rows += [[str(AGE_LABELS[k]), v] for k, v in figures.age_bands.items()]
    rows += [[], [_("最初の連絡手段"), _("人数")]]
    rows += [[str(CHANNEL_LABELS[k]), v] for k, v in figures.first_channels.items()]
    return rows


@blueprint.get("/stats")
@requires("export")
def monthly() -> Any:
    month = _month_arg()
    figures = service.monthly(g.tenant, month)
    return render_template(
        "stats/monthly.html", figures=figures, charts=_charts(figures), month=month,
        month_name=month_label(month), previous=service.previous_month(month),
        following=service.next_month(month), incident_labels=INCIDENT_LABELS,
        age_labels=AGE_LABELS, channel_labels=CHANNEL_LABELS, percent=percent, minutes=minutes)


@blueprint.get("/stats.csv")
@requires("export")
def export() -> Any:
    """The month's figures as CSV, UTF-8 with a BOM so that Excel reads the Japanese right."""
    month = _month_arg()
    figures = service.monthly(g.tenant, month)
    body = csv_text(csv_rows(figures))
    audit("stats.export", detail={"month": month.strftime("%Y-%m"), "format": "csv"})
    db.session.commit()
    name = f"mimamori-{g.tenant.slug}-stats-{month:%Y-%m}.csv"
    label = f"{g.tenant.name}_月次統計_{month:%Y-%m}.csv"
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\"; "
                                                    f"filename*=UTF-8''{quote(label)}"})
