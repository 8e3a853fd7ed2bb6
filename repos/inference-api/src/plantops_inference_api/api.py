"""The list of routers."""

from fastapi import APIRouter

from plantops_inference_api.routes import health, model, predict

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(predict.router)
api_router.include_router(model.router)
