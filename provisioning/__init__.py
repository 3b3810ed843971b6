"""`kiosk-provision`: setting a terminal up on site (detect, init, install, enroll, selftest, update)."""
