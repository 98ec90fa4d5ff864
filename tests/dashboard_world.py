"""What the dashboard's tests share: a store with seeded, aggregated events (`world`), a
dashboard on it (`app`), and helpers to log in and to look into rendered pages.

`world` and `app` are registered in tests/conftest.py: `world` is built once per backend for
the whole session and shared by the modules that only read it (building one takes 15-80 s). A
module that sends or aggregates more events takes a store of its own instead, by binding
`world = dashboard_world.own_world`, so that what it adds never changes what another counts.

`world` has two implementers, fewer than a trend needs, so its pages flag nothing; a module
that shows trends binds `trend_world` (tests/test_trends.py's store: known rising, emerging
and falling items in TREND_PERIOD, about 2 s to build).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, delete

from dashboard import auth
from dashboard.app import create_dashboard
from dashboard.data import Data
from kpi.settings import Settings
from kpi.store.db import make_engine
from kpi.store.registry import add_implementer, add_user
from kpi.warehouse.aggregate import run_aggregation
from tests.helpers import OCCUPATION, SKILL, days_ago, event
from tests.kpi_fixtures import Store, standard_store
from tests.support import fresh_store

PASSWORD = "correct horse battery"
HTML_LABEL = "<b>html</b><script>"


def seed_events(send: Callable[[str, list[dict]], Any], key_a: str, key_b: str) -> None:
    """A small, known mix of every event type, for two implementers (DE and FR)."""
    send(key_a, [
        event("a1", concept_uri=SKILL, language="de", count=5, context="job_vacancy"),
        event("a2", concept_uri=OCCUPATION, language="en", count=3, occurred_at=days_ago(2)),
        event("a3", type="label_added", concept_uri=SKILL, label=HTML_LABEL),
        event("a4", type="translation_feedback", concept_uri=SKILL, language="de",
              label="Gewindearten neu"),
        event("a5", language="xx"),  # rejected
        event("a6", concept_uri="http://data.europa.eu/esco/skill/not-in-catalogue"),
    ])
    send(key_b, [
        event("b1", concept_uri=SKILL, language="fr", count=2, occurred_at=days_ago(1)),
        event("b2", concept_uri=SKILL, language="fr", count=4, occurred_at=days_ago(45)),
        event("b3", type="concept_proposed", concept_type="skill", concept_uri=SKILL,
              label="quantum plumbing"),
    ])


@dataclass
class World:
    """A store with seeded, aggregated events and a dashboard user, shared by a module."""

    settings: Settings
    engine: Engine
    send: Callable[[str, list[dict]], None]
    key_a: str
    key_b: str


def _build_world(request, tmp_path_factory) -> Iterator[World]:
    """A store with the seeded events, aggregated, and the dashboard user. The first
    aggregation of a fresh warehouse alone takes seconds (it copies the whole catalogue), too
    slow to repeat for every test."""
    from collector.app import create_app

    folder = tmp_path_factory.mktemp("dashboard")
    with fresh_store(request, request.param, folder, prefix="esco_kpi_d") as settings:
        engine = make_engine(settings)
        try:
            key_a = add_implementer(engine, "Portal Alpha", "DE", "job_portal")[1]
            key_b = add_implementer(engine, "Agency Beta", "FR", "pes")[1]
            client = create_app(settings).test_client()

            def send(key: str, events: list[dict]) -> None:
                response = client.post("/v1/events", json={"events": events},
                                       headers={"Authorization": f"Bearer {key}"})
                assert response.status_code == 202, response.get_json()

            seed_events(send, key_a, key_b)
            run_aggregation(settings)
            add_user(engine, "esco", PASSWORD)
            yield World(settings, engine, send, key_a, key_b)
        finally:
            engine.dispose()


BACKENDS = ["sqlite", "postgresql"]
# One store per backend for the session (see the module's docstring) ...
world = pytest.fixture(scope="session", params=BACKENDS, name="world")(_build_world)
# ... or one per module, for a module that changes it.
own_world = pytest.fixture(scope="module", params=BACKENDS, name="world")(_build_world)


# The period tests/test_trends.py's store has trends in (2026-Q3 against Q2), as a URL query.
TREND_PERIOD = "?period=custom&start=2026-07-01&end=2026-09-30"


@pytest.fixture(scope="module")
def trend_world(tmp_path_factory) -> Iterator[Store]:
    """tests/test_trends.py's store (SQLite) with the dashboard user: 2 rising or emerging
    concepts, 1 falling, 1 emerging candidate label and 1 rising proposal in TREND_PERIOD."""
    from tests.test_trends import seed

    store = standard_store(tmp_path_factory.mktemp("trends"))
    try:
        seed(store)
        add_user(store.engine, "esco", PASSWORD)
        yield store
    finally:
        store.engine.dispose()


@pytest.fixture
def app(world):
    """A dashboard on the shared store; log-in counters and sessions are wiped afterwards."""
    yield create_dashboard(world.settings)
    with world.engine.begin() as conn:
        conn.execute(delete(auth.login_failures))
        conn.execute(delete(auth.sessions))


def data_of(app) -> Data:
    """The indicator access (and memo) of a dashboard."""
    return app.extensions["esco_dashboard_data"]


def csrf(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]


def log_in(client, username: str = "esco", password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf(client)})


UPDATE = "/dashboard/_dash-update-component"


def callback(client, output: str, inputs: dict[str, Any], state: dict[str, Any] | None = None,
             changed: str | None = None, headers: dict[str, str] | None = None):
    """POST a callback as Dash's renderer does: the callback whose output holds `output`
    (from /_dash-dependencies), with the values given by "id.property" (others None). A
    pattern input (ALL) is given by its property alone (".n_clicks"): (component id, value)
    pairs of the components it matches."""
    deps = client.get("/dashboard/_dash-dependencies").get_json()
    spec = next(d for d in deps if output in d["output"])

    def value(item: dict, given: dict[str, Any]) -> Any:
        if item["id"].startswith("{"):  # a pattern: every matching component, as a list
            return [{"id": i, "property": item["property"], "value": v}
                    for i, v in given.get(f".{item['property']}", ())]
        return {"id": item["id"], "property": item["property"],
                "value": given.get(f"{item['id']}.{item['property']}")}

    def values(items: list[dict], given: dict[str, Any]) -> list[Any]:
        return [value(i, given) for i in items]

    outputs = [{"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
               for part in spec["output"].strip(".").split("...")]
    body = {"output": spec["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": values(spec["inputs"], inputs), "state": values(spec["state"], state or {}),
            "changedPropIds": [changed or next(iter(inputs))]}
    return client.post(UPDATE, json=body, headers=headers or {})


def texts(component: Any) -> list[str]:
    """Every string in a Dash component tree (children, and AG Grid row values)."""
    out: list[str] = []
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        for c in component:
            out += texts(c)
        return out
    if hasattr(component, "to_plotly_json"):
        props = component.to_plotly_json()["props"]
        out += texts(props.get("children"))
        for row in getattr(component, "rowData", None) or []:
            out += [v for v in row.values() if isinstance(v, str)]
    return out


def find(component: Any, predicate) -> list[Any]:
    found = []
    if isinstance(component, list | tuple):
        for c in component:
            found += find(c, predicate)
    elif hasattr(component, "to_plotly_json"):
        if predicate(component):
            found.append(component)
        found += find(getattr(component, "children", None), predicate)
    return found
