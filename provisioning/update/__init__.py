"""The kiosk's side of fleet updates: check the TUF repository, download and verify a release, build and test it."""
