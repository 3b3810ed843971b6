"""Devices: one interface per device class, its real drivers, simulators/ and the factory that picks one by config."""
