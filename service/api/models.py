"""/v1/models (OpenAI-compatible): the strong base model and every published fine-tune, by served name."""

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from service.api.deps import SessionDep, SettingsDep, require_api_key
from service.api.errors import ApiError
from service.api.fine_tuning_schemas import ListPage, ModelPublic
from service.api.fine_tuning_serving import unix
from service.store.models import ModelVersion

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Depends(require_api_key)])


@router.get("", response_model=ListPage[ModelPublic])
def list_models(session: SessionDep, settings: SettingsDep) -> ListPage[ModelPublic]:
    """The base model first, then published versions, oldest first (vLLM serves all of them)."""
    return ListPage[ModelPublic](data=served_models(session, settings.strong_model), has_more=False)


@router.get("/{model_id:path}", response_model=ModelPublic)
def retrieve_model(model_id: str, session: SessionDep, settings: SettingsDep) -> ModelPublic:
    for model in served_models(session, settings.strong_model):
        if model.id == model_id:
            return model
    raise ApiError(
        404, f"model {model_id!r} not found: GET /v1/models lists the served names", "model_not_found", "model"
    )


def served_models(session: Session, strong_model: str) -> list[ModelPublic]:
    parent = aliased(ModelVersion)
    rows = session.execute(
        select(ModelVersion.served_name, ModelVersion.published_at, parent.served_name)
        .outerjoin(parent, parent.id == ModelVersion.parent_id)
        .where(ModelVersion.published_at.is_not(None))
        .order_by(ModelVersion.published_at, ModelVersion.id)
    )
    return [
        ModelPublic(id=strong_model, created=0, owned_by="system"),
        *(
            ModelPublic(id=name, created=unix(published), owned_by="debate-w2s", parent=parent_name or strong_model)
            for name, published, parent_name in rows
        ),
    ]
