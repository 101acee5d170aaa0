"""Schemathesis against every service's OpenAPI document: no 5xx, no response outside its schema.

Each service runs in-process with its lifespan (real SQLite, the embedded bus). Cases are
generated from the service's own /api/openapi.json, positive (valid by the schema) and
negative (invalid: the service must refuse them with a 4xx), and sent with a token of a
role that the operation admits (read from the route's dependency, own jurisdiction), so
that the use cases run rather than the sign-in check. Every response is checked by
Schemathesis' ``not_a_server_error`` and ``response_schema_conformance``.

Short form (CI): ``SHORT_CASES`` per service; long form (``KHAIBAO_RELIABILITY_LONG=1``,
``python -m bench.reliability --long``): at least 1,000 per service.
"""
from __future__ import annotations

import collections
import math

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from libs.common.auth import Role
from libs.common.settings import SERVICES
from tests.services.test_auth import protected_routes

from .conftest import (
    LONG,
    Minter,
    demo_system,
    record_figure,
    registration,
    service_url,
)
from .test_authz_matrix import OWN, principal_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHORT_CASES = 100
LONG_CASES = 1000
TARGET = LONG_CASES if LONG else SHORT_CASES
# Operations outside the API's contract (the documentation pages, /metrics' text).
SKIP = {"GET /api/docs", "GET /docs/oauth2-redirect", "GET /api/openapi.json"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(tmp_path_factory):
    async with demo_system(tmp_path_factory.mktemp("schemathesis") / "data") as running:
        await running["intake"].post("/api/registrations", json=registration("27664"))
        yield running


def generate(operation, count: int, mode: GenerationMode) -> list:  # noqa: ANN001
    """Up to ``count`` distinct cases of one operation (fewer when its inputs are few)."""
    cases: list = []

    @settings(max_examples=count, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(operation.as_strategy(generation_mode=mode))
    def collect(case) -> None:  # noqa: ANN001
        cases.append(case)

    try:
        collect()
    except (HypothesisException, Exception):  # noqa: BLE001 - e.g. no negative input exists for it
        pass
    return cases


def role_for(route) -> Role:  # noqa: ANN001
    for role in (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL, *Role):
        if not route.roles or role in route.roles:
            return role
    raise AssertionError(route)


async def fuzz_service(system, service: str, target: int) -> dict:  # noqa: ANN001
    app = system.apps[service]
    client = system[service]
    minter: Minter = system.extra["minter"]
    ids = {"unit_id": "00000000-0000-4000-8000-000000000001"}
    routes = {(r.method, r.path): r for r in protected_routes(service, app)}
    schema = schemathesis.openapi.from_dict(app.openapi())
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.label not in SKIP]
    per_operation = max(2, math.ceil(target / max(1, len(operations)) / 2))
    figures = collections.Counter()
    failures: list[str] = []
    rounds = 0
    while figures["cases"] < target and rounds < 4:
        rounds += 1
        for operation in operations:
            route = routes.get((operation.method.upper(), operation.path))
            headers = {"accept": "application/json"}
            if route is not None:
                role = role_for(route)
                headers["authorization"] = f"Bearer {principal_token(minter, role, 'own', ids)}"
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for case in generate(operation, per_operation, mode):
                    kwargs = case.as_transport_kwargs(base_url=service_url(service), headers=headers)
                    kwargs.pop("timeout", None)
                    kwargs.pop("allow_redirects", None)
                    kwargs.pop("verify", None)
                    client.cookies.clear()
                    try:
                        request = client.build_request(kwargs.pop("method"), kwargs.pop("url"), **kwargs)
                        request.read()  # a multipart body stays readable for the response checks
                    except (TypeError, AttributeError, ValueError):
                        figures["not_encodable"] += 1  # e.g. a number as a multipart file: no client sends it
                        continue
                    response = await client.send(request, follow_redirects=False)
                    figures["cases"] += 1
                    figures[f"{mode.value}"] += 1
                    if response.status_code >= 500:
                        figures["server_errors"] += 1
                    try:
                        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - a check's failure group
                        figures["failures"] += 1
                        if len(failures) < 30:
                            failures.append(f"{operation.label} [{mode.value}] {response.status_code}: "
                                            f"{str(exc)[:400]}")
    return {"figures": figures, "failures": failures, "operations": len(operations)}


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("service", SERVICES)
async def test_openapi_cases(system, service):
    result = await fuzz_service(system, service, TARGET)
    figures = result["figures"]
    record_figure("schemathesis", service=service, operations=result["operations"], cases=figures["cases"],
                  positive=figures["positive"], negative=figures["negative"],
                  server_errors=figures["server_errors"], schema_violations=figures["failures"])
    assert figures["cases"] >= TARGET * 0.9, figures
    assert not result["failures"], "\n".join(result["failures"])
    assert figures["server_errors"] == 0
