"""The permissions the gateway asks for cover every use it makes of them."""

from __future__ import annotations

from gateway.core.model import TelemetryField
from gateway.core.permissions import (
    COMMAND_PERMISSION,
    FIELD_PERMISSIONS,
    OPERATING_PERMISSIONS,
    REQUESTED_PERMISSIONS,
)


def test_every_field_and_the_commands_need_a_permission_asked_for_at_connect() -> None:
    """Each telemetry field has a permission, and it and the commands' permission are
    among those Connect requests and those the gateway operates with."""
    assert set(FIELD_PERMISSIONS) == set(TelemetryField)
    used = {*FIELD_PERMISSIONS.values(), COMMAND_PERMISSION}
    assert used <= OPERATING_PERMISSIONS <= REQUESTED_PERMISSIONS
