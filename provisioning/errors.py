"""Errors of the technician's provisioning tool (typed, with stable codes, like the kiosk's own)."""
from __future__ import annotations

from kiosk.errors import KioskError


class ProvisionError(KioskError):
    """A provisioning step could not be done; nothing was left half written."""

    code = "provision_failed"
    message_en = "The terminal could not be set up. Please check the message and try again."
    exit_status = 73  # EX_CANTCREAT


class ConfigExists(ProvisionError):
    """`init` would overwrite an existing config without --force."""

    code = "config_exists"
    exit_status = 73


class InstallVerifyFailed(ProvisionError):
    """The staged systemd units did not pass `systemd-analyze verify`."""

    code = "units_invalid"
    exit_status = 70
