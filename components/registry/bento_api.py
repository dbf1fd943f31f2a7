"""Registry API for Bentos: the built serving artifacts of models, and which one a stage serves."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from components.registry import artifacts
from components.registry import queries as q
from components.registry.base import ModelRef, check_window, nonempty
from components.registry.errors import InvalidArgumentError, NotFoundError
from components.registry.model_api import ModelAPI
from components.registry.models import Bento, Model
from components.registry.views import BentoInfo

Ts = TypeVarTuple("Ts")


def _bento_filter(s: Session, query: Select[*Ts], task: str | None, model: ModelRef | None) -> Select[*Ts]:
    """``query`` over Bentos restricted to those of a task's models and/or of one model."""
    if task is not None:
        query = query.join(Model, Model.id == Bento.model_id).where(Model.task == task)
    if model is not None:
        query = query.where(Bento.model_id == q.find_model(s, model).id)
    return query


class BentoAPI(ModelAPI):
    """Bentos; each serves a registered model, so this part builds on :class:`ModelAPI`."""

    def register_bento(
        self,
        tag: str,
        *,
        model: ModelRef,
        artifact_uri: str,
        sha256: str | None = None,
        run_id: int | None = None,
        actor: str | None = None,
    ) -> BentoInfo:
        """Register a built Bento of a model (``sha256`` computed from the local artifact if not given)."""
        nonempty("tag", tag)
        digest = artifacts.check_sha256(sha256 or artifacts.sha256_of(artifacts.local_path(artifact_uri)))
        who = actor or self.actor

        def op(s: Session) -> BentoInfo:
            if s.scalar(select(Bento.id).where(Bento.tag == tag)) is not None:
                raise InvalidArgumentError(f"bento {tag} is already registered")
            target = q.find_model(s, model)
            bento = Bento(
                tag=tag,
                model_id=target.id,
                artifact_uri=artifact_uri,
                sha256=digest,
                run_id=run_id,
                created_by=who,
            )
            s.add(bento)
            s.flush()
            self._audit(
                s,
                actor=who,
                action="bento.registered",
                entity_type="bento",
                entity_id=tag,
                summary=f"bento {tag} of model {q.model_ref(target)}",
                details={"artifact_uri": artifact_uri, "sha256": digest},
            )
            return q.bento_info(s, bento.id)

        return self._write(op)

    def bento(self, tag: str) -> BentoInfo:
        """One Bento by tag."""
        return self._read(lambda s: q.bento_info(s, q.find_bento(s, tag).id))

    def bentos(self, *, model: ModelRef | None = None, task: str | None = None) -> list[BentoInfo]:
        """Bentos, newest first, of one model or one task."""
        return self._bento_window(task, model, 0, None)

    def bento_page(
        self, *, task: str | None = None, model: ModelRef | None = None, offset: int = 0, limit: int = 25
    ) -> list[BentoInfo]:
        """One page of Bentos, newest first, of one task or model."""
        check_window(offset, limit)
        return self._bento_window(task, model, offset, limit)

    def count_bentos(self, *, task: str | None = None, model: ModelRef | None = None) -> int:
        """How many Bentos :meth:`bento_page` pages through."""
        return self._read(
            lambda s: int(s.scalar(_bento_filter(s, select(func.count(Bento.id)), task, model)) or 0)
        )

    def _bento_window(
        self, task: str | None, model: ModelRef | None, offset: int, limit: int | None
    ) -> list[BentoInfo]:
        """The Bentos of :func:`_bento_filter`, newest first, ``offset``/``limit`` applied."""

        def op(s: Session) -> list[BentoInfo]:
            query = _bento_filter(s, select(Bento.id), task, model)
            ids = s.scalars(query.order_by(Bento.id.desc()).offset(offset).limit(limit))
            return [q.bento_info(s, i) for i in ids]

        return self._read(op)

    def bento_for(self, task: str, stage: str = "production") -> BentoInfo:
        """The newest Bento of the model of ``task`` in ``stage`` (what ``bento pull TASK@STAGE`` fetches)."""
        current = self.model_at_stage(task, stage)
        if current is None:
            raise NotFoundError(f"no {stage} model for task {task!r}")
        found = self.bentos(model=current.id)
        if not found:
            raise NotFoundError(f"{stage} model {current.ref} of task {task!r} has no Bento")
        return found[0]

    def verify_bento(self, tag: str) -> Path:
        """The local path of a Bento's artifact, after checking its sha256 against the registry."""
        info = self.bento(tag)
        return artifacts.verify(f"bento {tag}", info.artifact_uri, info.sha256)
