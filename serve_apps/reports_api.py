"""``/api/v1/reports``: read stored reports (team token), and the scheduler's home in Serve.

``GET /api/v1/reports/{id}`` returns the report's content; ``GET /api/v1/reports/{id}/chart.png``
its chart. A team token reads only its own team's reports (another team's is 404, so existence
does not leak); org admins read their org's, the global admin all. Lists of reports, schedules and
their outcomes, and "run now": :mod:`serve_apps.schedules_api`.

The ``ReportsAPI`` deployment also makes sure the detached scheduler actor is running, so every
shape that deploys the Serve config (``incidentfox up``, the RayService) schedules reports.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from sqlalchemy.ext.asyncio import AsyncSession

from actors.scheduler.jobs import report_view
from actors.scheduler.models import Report
from config_service import PrincipalDep, SessionDep, install_auth_state
from incidentfox.contracts import Principal
from incidentfox.errors import NotFound, install_error_handlers
from incidentfox.http_limits import REPORTS_MAX_BODY, install_request_limits
from incidentfox.http_rate_limit import install_rate_limits
from incidentfox.runs.runner import RunnerFactory
from incidentfox.settings import Settings, ensure_local_secrets
from serve_apps.schedules_api import install_schedule_routes


def create_reports_app(settings: Settings, *, runner: RunnerFactory | None = None) -> FastAPI:
    """The reports API; ``runner`` builds the runner a run-now ``investigation`` schedule uses
    (default: the registry's ``investigation``)."""
    app = FastAPI(title="IncidentFox reports", docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    install_error_handlers(app)
    install_auth_state(app, settings=settings)
    # 401/413 before any body is read; the OpenAPI document is public.
    install_request_limits(app, max_body=REPORTS_MAX_BODY, public_paths=("/openapi.json",))
    install_rate_limits(app, surface="api", settings=settings)   # outermost: 429 before anything else
    if runner is None:
        from serve_apps.runners import RUNNERS

        runner = RUNNERS["investigation"]
    # Lists, schedules and run-now first: `/schedules` is not a report id.
    install_schedule_routes(app, settings=settings, runner=runner)

    async def visible(report_id: str, principal: Principal, session: AsyncSession) -> Report:
        report = await session.get(Report, report_id) if len(report_id) <= 40 else None
        if report is None or not principal.can_access_team(report.org_id, report.team_id):
            raise NotFound(f"report {report_id!r} not found", code="report_not_found")
        return report

    @app.get("/{report_id}")
    async def get_report(report_id: str, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
        """A stored report: period, content (runs, MTTA/MTTR, noisy alerts, failing tools, feedback)."""
        return report_view(await visible(report_id, principal, session))

    @app.get("/{report_id}/chart.png")
    async def get_chart(report_id: str, principal: PrincipalDep, session: SessionDep) -> Response:
        report = await visible(report_id, principal, session)
        if not report.chart_png:
            raise NotFound("this report has no chart", code="chart_not_found")
        return Response(report.chart_png, media_type="image/png")

    return app


class ReportsApiArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduler: bool = True
    tick_s: float = Field(default=30.0, gt=0)
    runner: str = "investigation"
    namespace: str = "incidentfox"


@serve.deployment(name="ReportsAPI", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=100)
@serve.ingress()
class ReportsAPI:
    def __init__(self, *, scheduler: bool = True, tick_s: float = 30.0, runner: str = "investigation",
                 namespace: str = "incidentfox") -> None:
        from incidentfox.logs import configure_process_logging

        configure_process_logging()
        from serve_apps.runners import RUNNERS

        self._settings = ensure_local_secrets(Settings())
        self._runner = RUNNERS[runner]
        if scheduler:
            from actors.scheduler.actor import ensure_scheduler

            ensure_scheduler(namespace=namespace, tick_s=tick_s, runner=self._runner)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_reports_app(self._settings, runner=self._runner)


def build_app(args: dict[str, Any] | ReportsApiArgs) -> Application:
    """``serve_apps.builder:build_reports`` delegates here with the app's ``args``."""
    a = args if isinstance(args, ReportsApiArgs) else ReportsApiArgs.model_validate(args or {})
    return ReportsAPI.bind(scheduler=a.scheduler, tick_s=a.tick_s, runner=a.runner, namespace=a.namespace)
