"""`kiosk demo`: scripted residents drive the real UI headless (driver, flows, people, resident, command)."""
