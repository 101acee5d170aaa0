"""The hot path's door: ``POST /api/declarations`` answered below FastAPI's routing.

On this 2-core machine FastAPI's router, dependency solving and request objects cost
about as much as validating and storing a declaration. This pure ASGI middleware sits
inside the common middleware (metrics by route template, trace ids, security headers,
language), recognises the few hot POST routes by their exact path, reads the body
itself (bounded), and calls the same function as the FastAPI route (api.declare_json),
which stays declared for the OpenAPI document and for any other method or path.
The bench routes' reference points go through this same door, so the comparison holds.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace

from .web import TOO_LARGE

Handler = Callable[[object, bytes], Awaitable[tuple[int, bytes, list[tuple[str, str]]]]]


class FastPath:
    def __init__(self, app, handlers: dict[str, Handler], limit: int) -> None:  # noqa: ANN001
        self.app = app
        self.handlers = handlers
        self.routes = {path: SimpleNamespace(path=path) for path in handlers}
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        handler = self.handlers.get(scope.get("path")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[scope["path"]]  # the metrics' route template
        body = await self._body(scope, receive)
        if body is None:
            from .api import problem_bytes

            status, payload, headers = problem_bytes(413, [], "body", TOO_LARGE)
        else:
            status, payload, headers = await handler(scope["app"].state.runtime, body)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
            *((k.encode(), v.encode()) for k, v in headers)]})
        await send({"type": "http.response.body", "body": payload})

    async def _body(self, scope, receive) -> bytes | None:  # noqa: ANN001
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    return None
                break
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
