"""Which model serves, and reloading it on demand."""

from __future__ import annotations

from fastapi import APIRouter

from plantops_inference_api.deps import ApiKeyDep, ManagerDep, ModelDep
from plantops_inference_api.errors import ModelLoadError, ReloadFailed
from plantops_inference_api.model import LoadedModel
from plantops_inference_api.schemas import ErrorResponse, ModelInfo, NoveltyInfo, ReloadResponse

router = APIRouter(prefix="/v1/model", tags=["model"])


def model_info(model: LoadedModel) -> ModelInfo:
    s, spec = model.source, model.spec
    return ModelInfo(
        name=s.name,
        version=s.version,
        alias=s.alias,
        run_id=s.run_id,
        source_uri=s.source_uri,
        dataset_version=s.dataset_version,
        test_accuracy=s.test_accuracy,
        trained_at=s.trained_at,
        labels=list(spec.labels),
        input_size=[3, spec.crop_size, spec.crop_size],
        preprocessing=spec.model_dump(exclude_none=True),
        loaded_at=model.loaded_at,
        novelty=novelty_info(model),
    )


def novelty_info(model: LoadedModel) -> NoveltyInfo | None:
    if model.novelty is None:
        return None
    spec = model.novelty.spec
    return NoveltyInfo(
        method=spec.method, threshold=spec.threshold, false_alarm_rate=spec.false_alarm_rate
    )


@router.get("", response_model=ModelInfo, responses={503: {"model": ErrorResponse}})
def get_model(model: ModelDep) -> ModelInfo:
    """The model serving now: version, run, dataset version, test accuracy, labels, input size."""
    return model_info(model)


@router.post(
    "/reload",
    response_model=ReloadResponse,
    dependencies=[ApiKeyDep],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key."},
        403: {"model": ErrorResponse, "description": "No PLANTOPS_API_KEY on the server."},
        503: {"model": ErrorResponse, "description": "Loading failed; the old model serves."},
    },
)
async def reload_model(manager: ManagerDep) -> ReloadResponse:
    """Resolve the alias now and load its version (from PLANTOPS_MODEL_PATH: reread the folder).

    Needs the `X-API-Key` header. On failure the model that was serving keeps serving.
    """
    try:
        reloaded = await manager.refresh_async(retry_failed=True)
    except ModelLoadError as exc:
        raise ReloadFailed(
            f"Loading the model failed at the {exc.stage} step; the previous model keeps "
            "serving. See the server log for details."
        ) from exc
    current = manager.current
    if current is None:  # refresh succeeded, so a model is loaded; kept for type checkers
        raise ReloadFailed("No model is loaded.")
    return ReloadResponse(reloaded=reloaded, model=model_info(current))
