"""``/v1/templates``: a tenant's stored templates over HTTP (http-api.md, "Templates, links,
analytics").

``POST /v1/templates {name, content}`` creates one (409 when the name is taken), ``GET
/v1/templates`` lists them by name, ``GET/PUT/DELETE /v1/templates/{name}`` read, create or
replace, and delete one. Every write is answered once it is durable (the group commit);
the book (``routing.templates``) serves reads from memory. A template's content is rendered
like a message's ``content`` (``{{name}}`` per recipient) when a message names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from routing.templates import StoredTemplate, TemplateBook, TemplateLimit, valid_name

from .errors import documented_errors
from .models import Template, TemplateIn, TemplatePage, TemplateUpdate
from .problems import ApiError
from .replies import BEARER, await_durable, json_response, require_json, tenant_of
from .status import timestamp

__all__ = ["template_routes", "shown"]



def shown(t: StoredTemplate) -> Template:
    return Template(name=t.name, content=t.content, created_at=timestamp(t.created_at),
                    updated_at=timestamp(t.updated_at))


def _answer(t: StoredTemplate, status: int = 200) -> Response[Any]:
    return json_response(shown(t), status)


def _tenant(request: Request[Any, Any, Any]) -> str:
    return tenant_of(request).system_id


def _name(name: str) -> str:
    if not valid_name(name):
        raise ApiError(404, "not_found", f"no template {name!r}")
    return name


def template_routes(book: TemplateBook, wall: Callable[[], float]) -> list[HTTPRouteHandler]:
    """The route handlers, over ``book``; ``wall`` is the clock of created/updated times."""

    async def store(tenant: str, name: str, content: str) -> tuple[StoredTemplate, bool]:
        try:
            t, created, durable = book.put(tenant, name, content, wall())
        except TemplateLimit as exc:
            raise ApiError(409, "too_many_templates", str(exc)) from None
        await await_durable(durable)
        return t, created

    @post("/v1/templates", status_code=201, tags=["templates"], summary="Store a template",
          security=BEARER, responses=documented_errors(400, 409, 415, 503),
          operation_id="create_template",
          description="A new template; 409 when the account has one of that name (replace "
                      "it with PUT). Answered once it is durable.")
    async def create(request: Request[Any, Any, Any], data: JSONBody[TemplateIn]
                     ) -> Response[Template]:
        require_json(request)
        tenant = _tenant(request)
        if book.get(tenant, data.name) is not None:
            raise ApiError(409, "template_exists",
                           f"a template {data.name!r} exists; PUT /v1/templates/{data.name} "
                           "replaces it")
        t, _ = await store(tenant, data.name, data.content)
        return _answer(t, 201)

    @get("/v1/templates", tags=["templates"], summary="The account's templates, by name",
         security=BEARER, responses=documented_errors(), operation_id="list_templates")
    async def listing(request: Request[Any, Any, Any]) -> Response[TemplatePage]:
        page = TemplatePage(data=[shown(t) for t in book.of(_tenant(request))])
        return json_response(page)

    @get("/v1/templates/{name:str}", tags=["templates"], summary="One template",
         security=BEARER, responses=documented_errors(404), operation_id="get_template")
    async def one(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Template]:
        t = book.get(_tenant(request), _name(name))
        if t is None:
            raise ApiError(404, "not_found", f"no template {name!r}")
        return _answer(t)

    @put("/v1/templates/{name:str}", tags=["templates"], summary="Create or replace a template",
         security=BEARER, responses=documented_errors(400, 409, 415, 503),
         operation_id="put_template",
         description="Stores the content under this name, replacing what was there (its "
                     "created_at is kept). Answered once it is durable.")
    async def replace(request: Request[Any, Any, Any], name: FromPath[str],
                      data: JSONBody[TemplateUpdate]) -> Response[Template]:
        require_json(request)
        if not valid_name(name):
            raise ApiError(400, "invalid_name", "a template name is 1 to 64 letters, digits, "
                                                "'_', '.' or '-', starting with a letter or "
                                                "digit")
        t, _ = await store(_tenant(request), name, data.content)
        return _answer(t)

    @delete("/v1/templates/{name:str}", status_code=204, tags=["templates"],
            summary="Delete a template", security=BEARER,
            responses=documented_errors(404, 503), operation_id="delete_template")
    async def remove(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        durable = book.delete(_tenant(request), _name(name))
        if durable is None:
            raise ApiError(404, "not_found", f"no template {name!r}")
        await await_durable(durable)

    return [create, listing, one, replace, remove]
