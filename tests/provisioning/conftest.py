"""Fixtures of the provisioning tests: releases built once per session and TUF repositories served on loopback."""
from gate_fixtures import gate_releases, stalling_server  # noqa: F401  (fixtures, found by name)
from release_fixtures import first_install, serve_repo, terminal, wheelhouse  # noqa: F401  (fixtures, found by name)
