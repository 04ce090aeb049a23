"""The composition root: each role set's app provides what its routes read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from consumers.queue import QueueState
from foundation.health import HealthState
from foundation.settings import Settings
from hitstream.app import ALL_ROLES, Role
from ingest.routes import IngestState
from reporting.routes import ReportingState
from sites.routes import AdminState

ROOM_STATES: dict[Role, list[Any]] = {
    Role.INGEST: [IngestState],
    Role.REPORT: [ReportingState, AdminState],
    Role.CONSUME: [],
}


@pytest.mark.parametrize(
    "roles",
    [frozenset({Role.INGEST}), frozenset({Role.REPORT}), frozenset({Role.CONSUME}), ALL_ROLES],
    ids=["ingest", "report", "consume", "serve"],
)
def test_each_role_set_provides_the_state_its_routes_read(
    make_client: Callable[..., TestClient], settings: Settings, roles: frozenset[Role]
) -> None:
    state = make_client(settings, roles).app_state
    wanted = [HealthState, QueueState, *(s for role in roles for s in ROOM_STATES[role])]
    for typed in wanted:
        missing = typed.__required_keys__ - set(state)
        assert not missing, f"{typed.__name__} needs {sorted(missing)}"
