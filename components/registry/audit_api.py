"""Registry API for the audit log: who did what to which entity, when and why."""

from __future__ import annotations

from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, select

from components.registry import queries as q
from components.registry.base import RegistryBase, check_window
from components.registry.models import AuditEntry
from components.registry.views import AuditEntryInfo

Ts = TypeVarTuple("Ts")


def _audit_filter(
    query: Select[*Ts],
    entity_type: str | None,
    entity_id: str | None,
    action: str | None,
    actor: str | None,
) -> Select[*Ts]:
    """``query`` over audit entries restricted to every filter given."""
    for column, value in (
        (AuditEntry.entity_type, entity_type),
        (AuditEntry.entity_id, entity_id),
        (AuditEntry.action, action),
        (AuditEntry.actor, actor),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


class AuditAPI(RegistryBase):
    """Audit entries: appended by this registry's actor, listed, paged and counted."""

    def record_audit(
        self,
        *,
        action: str,
        entity_type: str,
        entity_id: str,
        summary: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append an audit-log entry by this registry's actor (inside :meth:`atomic` it commits with the
        enclosing transaction), for actions taken outside the registry such as a forced packaging."""
        self._write(
            lambda s: self._audit(
                s,
                actor=None,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                summary=summary,
                reason=reason,
                details=details,
            )
        )

    def audit(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int | None = 100,
    ) -> list[AuditEntryInfo]:
        """Audit log entries, newest first."""
        query = _audit_filter(select(AuditEntry), entity_type, entity_id, action, actor)
        return self._audit_window(query, 0, limit)

    def audit_page(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> list[AuditEntryInfo]:
        """One page of the audit log, newest first, with the filters of :meth:`audit`."""
        check_window(offset, limit)
        query = _audit_filter(select(AuditEntry), entity_type, entity_id, action, actor)
        return self._audit_window(query, offset, limit)

    def count_audit(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> int:
        """How many audit entries :meth:`audit_page` pages through."""
        query = _audit_filter(select(func.count(AuditEntry.id)), entity_type, entity_id, action, actor)
        return self._read(lambda s: int(s.scalar(query) or 0))

    def _audit_window(self, query: Select[Any], offset: int, limit: int | None) -> list[AuditEntryInfo]:
        """The entries of a filtered audit query, newest first, ``offset``/``limit`` applied."""
        query = query.order_by(AuditEntry.id.desc()).offset(offset).limit(limit)
        return self._read(lambda s: [q.audit_info(e) for e in s.scalars(query)])

    def audit_actions(self) -> list[str]:
        """The distinct actions in the audit log, sorted."""
        query = select(AuditEntry.action).distinct().order_by(AuditEntry.action)
        return self._read(lambda s: [str(a) for a in s.scalars(query)])
