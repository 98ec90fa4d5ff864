"""schemathesis against /v1/openapi.json of a real server: no 5xx, answers as documented."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


@pytest.fixture
def api_schema(server):
    # The description declares no server: requests go to where it was fetched from. A body
    # over the event-count limit is rejected with 413, as the contract says.
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
        "expected-statuses": [400, 401, 405, 413, 415, 429]}}})
    return schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_holds_its_description(case, api_key):
    # Every other check runs. Not "schema-valid data is accepted": the description cannot say
    # everything the collector checks (dates within max_age_days, free text that looks personal
    # or is blank once trimmed), so a schema-valid event may rightly be rejected. What each
    # event type requires and allows it does say (tests/test_openapi_types.py).
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"},
                           excluded_checks=[positive_data_acceptance])
