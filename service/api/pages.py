"""Browser pages under /ui: runs, one run (stages, report table and chart), debates (filters, paging), one debate.

Server-rendered with Jinja2 (templates/), no JavaScript. Same keys as the API: the `Authorization`
header, or the cookie that the login form (/ui/login) sets; without one a page redirects to the form.
"""

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from debate.transcript import speaker_label
from service.api.deps import (
    API_KEY_COOKIE,
    LoginRequired,
    SessionDep,
    SettingsDep,
    bearer,
    key_accepted,
    require_api_key,
)
from service.api.limits import MAX_ID, IdPath
from service.api.page_views import DebateFilters, debate_detail, highlight_quotes, list_debates, list_runs, run_detail
from service.api.runs import report_chart_path
from service.settings import Settings

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["quotes"] = highlight_quotes
templates.env.globals["speaker_label"] = speaker_label


def require_login(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    try:
        require_api_key(request, settings, credentials)
    except HTTPException:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else "")) from None


public = APIRouter(include_in_schema=False)
router = APIRouter(
    prefix="/ui", include_in_schema=False, dependencies=[Depends(require_login)], default_response_class=HTMLResponse
)


@public.get("/")
@public.get("/ui")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=303)


@public.get("/ui/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, next: str = "/ui/runs") -> Response:
    return _login_page(request, settings, _safe_next(next))


@public.post("/ui/login")
def login(
    request: Request, settings: SettingsDep, key: Annotated[str, Form()], next: Annotated[str, Form()] = "/ui/runs"
) -> Response:
    """Check the key and keep it in an HTTP-only cookie (SameSite=Lax: other sites cannot post with it)."""
    if not key_accepted(settings, key.strip()):
        return _login_page(request, settings, _safe_next(next), "That key is not accepted (see W2S_API_KEYS).", 403)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        API_KEY_COOKIE, key.strip(), httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
    return response


@public.post("/ui/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(API_KEY_COOKIE)
    return response


def _login_page(
    request: Request, settings: Settings, next_url: str, error: str | None = None, status: int = 200
) -> Response:
    context = {"next": next_url, "error": error, "keys_needed": bool(settings.api_keys)}
    return templates.TemplateResponse(request, "login.html", context, status_code=status)


def _safe_next(next_url: str) -> str:
    """Only back to one of our pages (no open redirect to another site)."""
    return next_url if next_url.startswith("/ui/") and not next_url.startswith("//") else "/ui/runs"


@router.get("/runs")
def runs_page(request: Request, session: SessionDep, page: Annotated[int, Query(ge=1, le=MAX_ID)] = 1) -> Response:
    runs, paging = list_runs(session, page)
    return templates.TemplateResponse(
        request, "runs.html", {"runs": runs, "paging": paging, "link": lambda number: urlencode({"page": number})}
    )


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: IdPath, session: SessionDep, settings: SettingsDep) -> Response:
    detail = run_detail(session, run_id)
    if detail is None:
        return _missing(request, f"No run with id {run_id}.")
    has_chart = report_chart_path(settings, run_id).is_file()
    return templates.TemplateResponse(request, "run.html", {"detail": detail, "has_chart": has_chart})


@router.get("/debates")
def debates_page(request: Request, session: SessionDep, filters: Annotated[DebateFilters, Query()]) -> Response:
    rows, paging, choices = list_debates(session, filters)
    return templates.TemplateResponse(
        request,
        "debates.html",
        {"rows": rows, "paging": paging, "choices": choices, "filters": filters, "link": filters.query_string},
    )


@router.get("/debates/{debate_id}")
def debate_page(request: Request, debate_id: IdPath, session: SessionDep) -> Response:
    detail = debate_detail(session, debate_id)
    if detail is None:
        return _missing(request, f"No debate with id {debate_id}.")
    return templates.TemplateResponse(request, "debate.html", {"detail": detail})


def _missing(request: Request, message: str) -> Response:
    return templates.TemplateResponse(request, "missing.html", {"message": message}, status_code=404)
