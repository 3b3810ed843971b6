"""Releases of the kiosk software: building them (`kiosk-release build`) and publishing them in a TUF repository."""
