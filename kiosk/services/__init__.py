"""The kiosk's logic without Kivy: catalog, workflow, journal, session, backend adapter, health, runtime."""
