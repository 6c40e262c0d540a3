"""The public verification page: open a share link, or choose / drop / paste a certificate file, and
see who issued it, to whom, for what, and every check with its outcome. No login anywhere.

Rendered on the server: the browser posts the file in an ordinary form (a small script only turns a
dropped file into that form's file and submits it), so the page also works with scripts off. The
checks are those of ``academy verify`` (signature, issuer key, Merkle inclusion, ledger anchor,
status list, dates, schema), run by academy against its own ledger and status lists.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..api.deps import AcademyState, StateDep
from ..credentials.jcs import loads
from ..models import CredentialRecord
from ..services import credentials as svc
from .i18n import text
from .layout import esc, facts, lang_of, page, table
from .verify_zh import detail_zh

router = APIRouter(include_in_schema=False)
MAX_BYTES = 1024 * 1024
CHECK_KEYS = {
    "schema": "c_schema",
    "dates": "c_dates",
    "signature": "c_signature",
    "issuer key": "c_issuer_key",
    "merkle inclusion": "c_merkle",
    "ledger anchor": "c_anchor",
    "status": "c_status",
}

DROP_SCRIPT = """
const drop = document.getElementById("drop"), file = document.getElementById("file");
const form = document.getElementById("verify-form");
file.addEventListener("change", () => { if (file.files.length) form.submit(); });
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault(); drop.classList.remove("over");
  if (ev.dataTransfer.files.length) { file.files = ev.dataTransfer.files; form.submit(); }
});
"""


def _form(lang: str, base: str, pasted: str = "", learner: str = "") -> str:
    return (
        f'<p class="lead">{esc(text(lang, "verify_lead"))}</p>'
        f'<form id="verify-form" method="post" action="{esc(base)}/verify" enctype="multipart/form-data">'
        f'<div id="drop"><label for="file">{esc(text(lang, "choose_file"))}</label> '
        f'<input type="file" id="file" name="credential" accept=".json,application/json">'
        f'<p class="muted">{esc(text(lang, "drop_here"))}</p></div>'
        f'<label for="doc">{esc(text(lang, "paste_json"))}</label>'
        f'<textarea id="doc" name="document">{esc(pasted)}</textarea>'
        f'<p><label for="learner">{esc(text(lang, "learner_check"))}</label> '
        f'<input id="learner" name="learner" value="{esc(learner)}" autocomplete="off"></p>'
        f'<button type="submit" id="go">{esc(text(lang, "verify"))}</button></form>'
        f"<script>{DROP_SCRIPT}</script>"
    )


def _str(value: Any) -> str:
    """Text the page shows from the document: only strings (a number or list shows nothing)."""
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# the members the page shows, and the JSON type each must have when present
_SHAPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "issuer": (str, dict),
    "credentialSubject": (dict, list),
    "validFrom": (str,),
    "validUntil": (str,),
    "evidence": (list, dict),
}


_TYPE_NAMES: dict[type, str] = {str: "text", dict: "an object", list: "a list"}


def type_problem(doc: Any) -> str | None:
    """Why ``doc`` cannot be a credential at all (wrong JSON types), or None."""
    if not isinstance(doc, dict):
        return "a certificate is a JSON object"
    for member, types in _SHAPES.items():
        if member in doc and not isinstance(doc[member], types):
            names = " or ".join(_TYPE_NAMES[t] for t in types)
            return f"{member} must be {names}"
    return None


def _issuer(doc: dict) -> tuple[str, str]:
    issuer = doc.get("issuer")
    if isinstance(issuer, str):
        return issuer, issuer
    if isinstance(issuer, dict):
        return _str(issuer.get("name")) or _str(issuer.get("id")), _str(issuer.get("id"))
    return "", ""


def _identity_matches(subject: dict, learner: str) -> bool | None:
    for ident in _dicts(subject.get("identifier")):
        stored = _str(ident.get("identityHash"))
        if stored.startswith("sha256$"):
            digest = hashlib.sha256((learner + _str(ident.get("salt"))).encode()).hexdigest()
            return stored == f"sha256${digest}"
    return None


def _issuer_cell(lang: str, doc: dict, report: dict) -> str:
    """The issuer: the name academy holds when it knows the issuer and its key; otherwise the
    name the document gives, marked as unverified (anyone can write any name and sign it)."""
    name, ident = _issuer(doc)
    known = (report.get("issuer") or {}).get("known")
    if known:
        held = (report.get("issuer") or {}).get("name") or name
        return (
            f'<span id="issuer" data-known="yes">{esc(held)}</span><br><code>{esc(ident)}</code>'
            f'<br><span class="ok" id="issuer-note">{esc(text(lang, "issuer_known_note"))}</span>'
        )
    return (
        f'<span id="issuer" data-known="no">{esc(name)}</span><br><code>{esc(ident)}</code>'
        f'<br><span class="bad" id="issuer-note">{esc(text(lang, "issuer_unknown_note"))}</span>'
    )


def _about(lang: str, doc: Any, learner: str, report: dict) -> str:
    """Issuer, learner and achievement as the document states them (the checks say if it is
    true; the issuer's name is shown as academy holds it, or marked unverified)."""
    if not isinstance(doc, dict):
        return ""
    subject = _dict(doc.get("credentialSubject"))
    ach = _dict(subject.get("achievement"))
    pairs = [
        (text(lang, "issuer"), _issuer_cell(lang, doc, report)),
        (
            text(lang, "learner"),
            f'<code id="subject">{esc(_str(subject.get("id")))}</code>'
            f'<br><span class="muted">{esc(text(lang, "identity_hashed"))}</span>',
        ),
    ]
    if learner:
        match = _identity_matches(subject, learner)
        key = "identity_yes" if match else "identity_no"
        cls = "ok" if match else "bad"
        pairs.append(
            (
                text(lang, "learner_check"),
                f'<span id="identity" class="{cls}">{esc(text(lang, key).format(name=learner))}</span>',
            )
        )
    level = ""
    for align in _dicts(ach.get("alignment")):
        if _str(align.get("targetName")):
            level = f" · {align['targetName']}"
    pairs.append(
        (
            text(lang, "achievement"),
            f'<span id="achievement">{esc(_str(ach.get("name")) or _str(doc.get("name")))}</span>'
            f"{esc(level)}<br>{esc(_str(ach.get('description')))}",
        )
    )
    pairs.append((text(lang, "valid_from"), esc(_str(doc.get("validFrom")))))
    if _str(doc.get("validUntil")):
        pairs.append((text(lang, "valid_until"), esc(doc["validUntil"])))
    evidence = [_str(e.get("description")) for e in _dicts(doc.get("evidence"))]
    if evidence:
        pairs.append((text(lang, "evidence"), "<br>".join(esc(e) for e in evidence)))
    pairs.append((text(lang, "credential_id"), f"<code>{esc(_str(doc.get('id')))}</code>"))
    return facts(pairs, "about")


def _report(lang: str, report: dict, doc: Any, learner: str) -> str:
    verdict = report["verdict"]
    out = (
        f'<h2 id="result">{esc(text(lang, "verdict"))}: <span class="verdict {esc(verdict)}" '
        f'id="verdict" data-verdict="{esc(verdict)}">{esc(text(lang, "v_" + verdict))}</span></h2>'
    )
    failed = [c["name"] for c in report["checks"] if c["outcome"] == "fail"]
    if failed:
        names = ", ".join(
            text(lang, CHECK_KEYS.get(n, "")) if n in CHECK_KEYS else n for n in failed
        )
        out += f'<p role="alert" id="failed">{esc(text(lang, "failed_checks"))}: {esc(names)}</p>'
    out += _about(lang, doc, learner, report)
    rows, attrs = [], []
    for c in report["checks"]:
        cls = {"pass": "pass", "fail": "fail"}.get(c["outcome"], "na")
        label = text(lang, CHECK_KEYS[c["name"]]) if c["name"] in CHECK_KEYS else c["name"]
        rows.append(
            [
                f'<span class="{cls}">{esc(text(lang, "o_" + cls))}</span>',
                esc(label),
                esc(detail_zh(c["detail"]) if lang == "zh" else c["detail"]),
            ]
        )
        attrs.append(f'data-check="{esc(c["name"])}" data-outcome="{cls}"')
    out += f"<h2>{esc(text(lang, 'checks'))}</h2>"
    return out + table(
        [text(lang, k) for k in ("outcome", "check", "detail")], rows, "checks", row_attrs=attrs
    )


def _verify(state: AcademyState, doc: Any) -> dict:
    with Session(state.engine, expire_on_commit=False) as session:
        return svc.verify_document(session, state.settings, doc).to_json()


def _shared(state: AcademyState, token: str) -> Any:
    with Session(state.engine) as session:
        row = session.exec(
            select(CredentialRecord).where(CredentialRecord.share_token == token)
        ).first()
        return json.loads(row.document) if row is not None and token else None


async def _render(
    request: Request, state: AcademyState, doc: Any, pasted: str, learner: str, status: int = 200
) -> HTMLResponse:
    lang, base = lang_of(request), state.settings.base_path
    report = await run_in_threadpool(_verify, state, doc)
    # the verdict first: someone who opened a share link came for it, not for the form
    body = _report(lang, report, doc, learner) + f"<h2>{esc(text(lang, 'verify_other'))}</h2>"
    return page(
        lang, text(lang, "verify_title"), body + _form(lang, base, pasted, learner), base, status
    )


def _problem(
    request: Request, state: AcademyState, message: str, pasted: str, status: int
) -> HTMLResponse:
    lang, base = lang_of(request), state.settings.base_path
    body = (
        _form(lang, base, pasted)
        + f'<p role="alert" class="notice bad" id="error">{esc(message)}</p>'
    )
    return page(lang, text(lang, "verify_title"), body, base, status)


@router.get("/verify", response_class=HTMLResponse)
async def verify_page(
    request: Request, state: StateDep, share: str = "", learner: str = ""
) -> HTMLResponse:
    """The empty form, or (``?share=``) the verdict on the certificate a learner shared."""
    lang, base = lang_of(request), state.settings.base_path
    if not share:
        return page(lang, text(lang, "verify_title"), _form(lang, base), base)
    doc = await run_in_threadpool(_shared, state, share)
    if doc is None:
        return _problem(request, state, text(lang, "share_gone"), "", 404)
    return await _render(request, state, doc, json.dumps(doc, indent=2), learner)


@router.post("/verify", response_class=HTMLResponse)
async def verify_posted(request: Request, state: StateDep) -> HTMLResponse:
    """A chosen or dropped file (field ``credential``) or pasted JSON (field ``document``)."""
    lang = lang_of(request)
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception:
        return _problem(request, state, text(lang, "not_a_form"), "", 400)
    try:
        upload, raw = form.get("credential"), ""
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                return _problem(request, state, text(lang, "too_big"), "", 413)
            raw = data.decode("utf-8", errors="replace")
        if not raw.strip():
            raw = str(form.get("document") or "")
        learner = str(form.get("learner") or "").strip()
    finally:
        await form.close()
    if not raw.strip():
        return _problem(request, state, text(lang, "nothing_given"), "", 422)
    try:
        doc = loads(raw)  # bounded: size and depth are checked before parsing
    except ValueError as exc:
        return _problem(request, state, text(lang, "not_json").format(why=exc), raw, 422)
    problem = type_problem(doc)
    if problem is not None:
        message = text(lang, "wrongly_typed").format(why=problem)
        return _problem(request, state, message, raw, 422)
    return await _render(request, state, doc, raw, learner)
