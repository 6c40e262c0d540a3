"""What every academy page shares: one style, the page shell (language, navigation, main landmark),
tables and fact lists, and who is looking.

Pages are server-rendered HTML with no script framework, so they work with the keyboard, a screen
reader and a slow link alike. A browser that is not signed in is sent through the hub's login
(``/login?next=...``) instead of getting a JSON 401; API clients with a token never notice.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..api.deps import AcademyState, get_principal, get_state
from ..services.access import Principal
from ..services.errors import Unauthorized
from .i18n import pick_language, text

STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;margin:0 auto;max-width:72rem;padding:1rem;
color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}h3{font-size:1rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top}code,.mono{font-family:ui-monospace,monospace;word-break:break-all}
a{color:#0645ad}a:focus,input:focus,button:focus,select:focus,textarea:focus{outline:3px solid #f5a623;outline-offset:2px}
.bad{color:#a00}.ok{color:#060}.muted{color:#555}form{margin:1rem 0}input{padding:.3rem}
input[type=search],input.wide{min-width:30rem}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1rem;border-bottom:1px solid #ccc;padding-bottom:.5rem}
.notice{background:#eef6ee;border:1px solid #6a6;padding:.5rem}.notice.bad{background:#fbeaea;border-color:#a66}
form.inline{display:inline-block;margin:.2rem .5rem .2rem 0}
td.heat{text-align:center;min-width:3rem}#heat-grid{width:auto}
.verdict{font-weight:700;padding:.15rem .6rem;border-radius:4px}
.verdict.valid{background:#d7f5dd;color:#11602a}
.verdict.invalid,.verdict.revoked,.verdict.suspended{background:#fbdcdc;color:#8a1414}
.verdict.issuer_unknown{background:#fff1c2;color:#6b4a00}
.pass{color:#11602a;font-weight:700}.fail{color:#8a1414;font-weight:700}.na{color:#666}
#drop{border:2px dashed #99a;border-radius:8px;padding:1rem;margin:.5rem 0}#drop.over{background:#eef3ff}
#checks td:first-child,#checks th:first-child{white-space:nowrap}dt{font-weight:600}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:.2rem;background:#fff;padding:.2rem}
textarea{width:100%;min-height:8rem;font-family:ui-monospace,monospace;box-sizing:border-box}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def lang_of(request: Request) -> str:
    """``zh`` or ``en``: the signed-in viewer's chosen language, else the browser's."""
    chosen = getattr(request.state, "language", None)
    if chosen in ("en", "zh-CN"):
        return "zh" if chosen == "zh-CN" else "en"
    return pick_language(request.headers.get("accept-language"))


def html_lang(lang: str) -> str:
    return "zh-CN" if lang == "zh" else "en"


NAV = [
    ("my_courses", "/me/"),
    ("my_labs", "/me/labs"),
    ("my_submissions", "/me/submissions"),
    ("my_certificates", "/me/certificates"),
    ("my_chains", "/explorer/"),
    ("dashboard", "/dashboard/"),
    ("verify_nav", "/verify"),
]


#: set per request by :func:`viewer`: whether the signed-in user teaches or administers anything
_staff: ContextVar[bool] = ContextVar("academy_pages_staff", default=False)


def page(lang: str, title: str, body: str, base: str, status: int = 200) -> HTMLResponse:
    """The page shell: ``lang`` on <html>, one navigation landmark, the title as the only <h1>.
    The dashboard link is offered only to those who teach or administer."""
    staff = _staff.get()
    links = "".join(
        f'<li><a href="{esc(base)}{href}">{esc(text(lang, key))}</a></li>'
        for key, href in NAV
        if staff or key != "dashboard"
    )
    doc = (
        f'<!doctype html><html lang="{html_lang(lang)}"><head>'
        f'<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{esc(title)} · ChainAcademy</title><style>{STYLE}</style></head><body>"
        f'<a class="skip" href="#main">{esc(text(lang, "skip"))}</a>'
        f'<nav aria-label="{esc(text(lang, "site_nav"))}"><ul>{links}</ul></nav>'
        f'<main id="main" tabindex="-1"><h1>{esc(title)}</h1>{body}</main></body></html>'
    )
    return HTMLResponse(doc, status_code=status, headers={"Content-Language": html_lang(lang)})


def table(
    headers: list[str],
    rows: list[list[str]],
    table_id: str,
    caption: str = "",
    row_attrs: list[str] | None = None,
) -> str:
    """A data table; cells are HTML already escaped by the caller, ``row_attrs`` per <tr>."""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    attrs = row_attrs or [""] * len(rows)
    body = "".join(
        f"<tr{' ' + a if a else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for row, a in zip(rows, attrs, strict=True)
    )
    return (
        f'<table id="{table_id}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def facts(pairs: list[tuple[str, str]], dl_id: str) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl id="{dl_id}">{items}</dl>'


def notice(message: str, bad: bool = False) -> str:
    """A one-line outcome of an action, announced to screen readers."""
    role = "alert" if bad else "status"
    return f'<p role="{role}" class="notice{" bad" if bad else ""}" id="notice">{esc(message)}</p>'


async def viewer(request: Request, state: Annotated[AcademyState, Depends(get_state)]) -> Principal:
    """The signed-in user; a browser without a session is sent to the hub's login and back."""
    try:
        principal = await get_principal(request, state)
        _staff.set(principal.is_platform_admin or bool(principal.institutions()))
        request.state.language = principal.user.language  # what lang_of follows
        return principal
    except Unauthorized:
        if state.hub is None or request.headers.get("authorization"):
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"{state.settings.base_path}/login?next={quote(target, safe='/')}"
        raise StarletteHTTPException(302, headers={"Location": login}) from None


ViewerDep = Annotated[Principal, Depends(viewer)]
T = TypeVar("T")


async def in_session(state: AcademyState, work: Callable[[Session], T]) -> T:
    """Run ``work`` with a database session on a worker thread: pages read the database
    synchronously and must not hold up the event loop meanwhile."""

    def run() -> T:
        with Session(state.engine, expire_on_commit=False) as session:
            return work(session)

    return await run_in_threadpool(run)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page (same words as the API's ``detail``), with the navigation to go on."""
    lang = lang_of(request)
    base = request.app.state.academy.settings.base_path
    title = text(lang, "not_found_title" if status == 404 else "error_title")
    return page(lang, title, notice(message, bad=True), base, status)
