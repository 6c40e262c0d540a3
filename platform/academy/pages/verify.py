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
from ..models import CredentialRecord
from ..services import credentials as svc
from .i18n import text
from .layout import esc, facts, lang_of, page, table

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


def _issuer(doc: dict) -> tuple[str, str]:
    issuer = doc.get("issuer")
    if isinstance(issuer, str):
        return issuer, issuer
    if isinstance(issuer, dict):
        return str(issuer.get("name") or issuer.get("id") or ""), str(issuer.get("id") or "")
    return "", ""


def _identity_matches(subject: dict, learner: str) -> bool | None:
    for ident in subject.get("identifier") or []:
        if isinstance(ident, dict) and str(ident.get("identityHash", "")).startswith("sha256$"):
            digest = hashlib.sha256((learner + str(ident.get("salt", ""))).encode()).hexdigest()
            return ident["identityHash"] == f"sha256${digest}"
    return None


def _about(lang: str, doc: Any, learner: str) -> str:
    """Issuer, learner and achievement as the document states them (the checks say if it is true)."""
    if not isinstance(doc, dict):
        return ""
    name, ident = _issuer(doc)
    subject: dict[str, Any] = (
        doc["credentialSubject"] if isinstance(doc.get("credentialSubject"), dict) else {}
    )
    ach: dict[str, Any] = subject["achievement"] if isinstance(subject.get("achievement"), dict) else {}
    pairs = [
        (
            text(lang, "issuer"),
            f'<span id="issuer">{esc(name)}</span><br><code>{esc(ident)}</code>',
        ),
        (
            text(lang, "learner"),
            f'<code id="subject">{esc(subject.get("id", ""))}</code>'
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
    for align in ach.get("alignment") or []:
        if isinstance(align, dict) and align.get("targetName"):
            level = f" · {align['targetName']}"
    pairs.append(
        (
            text(lang, "achievement"),
            f'<span id="achievement">{esc(ach.get("name") or doc.get("name") or "")}</span>'
            f"{esc(level)}<br>{esc(ach.get('description', ''))}",
        )
    )
    pairs.append((text(lang, "valid_from"), esc(doc.get("validFrom", ""))))
    if doc.get("validUntil"):
        pairs.append((text(lang, "valid_until"), esc(doc["validUntil"])))
    evidence = [e.get("description", "") for e in doc.get("evidence") or [] if isinstance(e, dict)]
    if evidence:
        pairs.append((text(lang, "evidence"), "<br>".join(esc(e) for e in evidence)))
    pairs.append((text(lang, "credential_id"), f"<code>{esc(doc.get('id', ''))}</code>"))
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
    out += _about(lang, doc, learner)
    rows, attrs = [], []
    for c in report["checks"]:
        cls = {"pass": "pass", "fail": "fail"}.get(c["outcome"], "na")
        label = text(lang, CHECK_KEYS[c["name"]]) if c["name"] in CHECK_KEYS else c["name"]
        rows.append(
            [
                f'<span class="{cls}">{esc(text(lang, "o_" + cls))}</span>',
                esc(label),
                esc(c["detail"]),
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
        doc = json.loads(raw)
    except ValueError as exc:
        return _problem(request, state, text(lang, "not_json").format(why=exc), raw, 422)
    return await _render(request, state, doc, raw, learner)
