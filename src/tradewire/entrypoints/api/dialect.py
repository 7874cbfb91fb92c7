"""A route class per dialect: its errors rendered in its own shape, in one place."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

Renderer = Callable[[Exception], Response | None]


def dialect_route(render: Renderer) -> type[APIRoute]:
    """An APIRoute whose handler turns known exceptions into `render`'s responses."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await original(request)
                except Exception as exc:
                    response = render(exc)
                    if response is None:
                        raise
                    return response

            return handler

    return DialectRoute
