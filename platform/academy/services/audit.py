"""Append-only audit trail of changes to grades, roles and enrollments."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from ..models import AuditEvent
from .access import Principal


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    entity: str,
    entity_id: int | None,
    institution_id: int | None = None,
    **detail: Any,
) -> None:
    """Add one event in the caller's transaction (it is kept only if the change is)."""
    session.add(
        AuditEvent(
            actor_id=principal.user_id if principal else None,
            token_id=principal.token_id if principal else None,
            action=action,
            entity=entity,
            entity_id=entity_id,
            institution_id=institution_id,
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
    )
