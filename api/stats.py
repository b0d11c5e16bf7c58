"""Monthly statistics (月次統計): answer rates, incidents by outcome, residents by age band."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api.auth import require_tenant
from schemas.stats import StatsArgs, StatsOut
from tenants.services import stats as service
from tenants.services.policies import bound_tenant
from tenants.types import utcnow

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats",
                description="Monthly figures for council reports, in the tenant's time zone.")
blp.before_request(require_tenant)
blueprints = [blp]


@blp.route("")
class Stats(MethodView):
    @blp.arguments(StatsArgs, location="query")
    @blp.response(200, StatsOut)
    def get(self, args: dict[str, Any]) -> Any:
        """The figures of one month (`?month=YYYY-MM`, default this month), as the dashboard's
        statistics page and its CSV show them."""
        tenant = bound_tenant()
        month = (date.fromisoformat(args["month"] + "-01") if args.get("month")
                 else tenant.local_today(utcnow()))
        figures = service.monthly(tenant, month)
        return {"month": figures.month.strftime("%Y-%m"), "checks": figures.checks,
                "answered": figures.answered, "response_rate": figures.rate,
                "median_answer_minutes": figures.median_answer_minutes,
                "incidents": figures.incidents, "residents": figures.residents,
                "age_bands": figures.age_bands, "first_channels": figures.first_channels,
                "days": [{"date": day.day, "checks": day.checks, "answered": day.answered,
                          "response_rate": day.rate} for day in figures.days]}
