"""Scope tags on objects: stored on the row (for reads) and in object_scope_tags (for filters)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select, true
from sqlalchemy.orm import Session

from countersign.domain.rbac import Access
from countersign.store import tables as t


def set_scope_tags(session: Session, row: Any, tag_ids: list[str], *, new: bool = False) -> None:
    """Replace the object's scope tags (`new`: the object was created in this transaction, so
    it has none to delete)."""
    tag_ids = list(dict.fromkeys(tag_ids))  # a tag named twice is carried once
    row.role_scope_tag_ids = tag_ids
    if not new:
        session.execute(delete(t.ObjectScopeTag).where(t.ObjectScopeTag.object_id == row.id))
    session.add_all(
        t.ObjectScopeTag(object_id=row.id, tag_id=tag, tenant_id=row.tenant_id) for tag in tag_ids
    )


def reachable(id_column: Any, access: Access, permission: str) -> ColumnElement[bool]:
    """SQL condition: the object carries a scope tag that an assignment granting
    `permission` reaches."""
    assignments = access.assignments_granting(permission)
    if any(a.all_scope_tags for a in assignments):
        return true()
    tags = sorted({tag for a in assignments for tag in a.scope_tag_ids})
    return exists(
        select(t.ObjectScopeTag.object_id).where(
            t.ObjectScopeTag.object_id == id_column, t.ObjectScopeTag.tag_id.in_(tags)
        )
    )
