"""What route handlers need, named as types (`client: ClientDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from plantops_webapp.api_client import InferenceClient
from plantops_webapp.config import Settings
from plantops_webapp.feedback import FeedbackStore
from plantops_webapp.metrics import WebappMetrics
from plantops_webapp.pending import PendingUploads
from plantops_webapp.ratelimit import AbuseLimits
from plantops_webapp.reviewers import Reviewers


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_client(request: Request) -> InferenceClient:
    return request.app.state.client


def get_pending(request: Request) -> PendingUploads:
    return request.app.state.pending


def get_feedback_store(request: Request) -> FeedbackStore | None:
    return request.app.state.feedback_store


def get_metrics(request: Request) -> WebappMetrics:
    return request.app.state.metrics


def get_limits(request: Request) -> AbuseLimits:
    return request.app.state.limits


def get_reviewers(request: Request) -> Reviewers:
    return request.app.state.reviewers


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ClientDep = Annotated[InferenceClient, Depends(get_client)]
PendingDep = Annotated[PendingUploads, Depends(get_pending)]
FeedbackStoreDep = Annotated[FeedbackStore | None, Depends(get_feedback_store)]
MetricsDep = Annotated[WebappMetrics, Depends(get_metrics)]
LimitsDep = Annotated[AbuseLimits, Depends(get_limits)]
ReviewersDep = Annotated[Reviewers, Depends(get_reviewers)]
