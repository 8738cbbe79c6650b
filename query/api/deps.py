"""Typed dependencies shared by the routers: the query service and the configuration."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from spanlake.config import Config
from spanlake.query.service import QueryService


def _query_service(request: Request) -> QueryService:
    return request.app.state.query_service


def _config(request: Request) -> Config:
    return request.app.state.config


QueryServiceDep = Annotated[QueryService, Depends(_query_service)]
ConfigDep = Annotated[Config, Depends(_config)]
