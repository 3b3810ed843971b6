"""Simulated devices, one module per device class: first-class drivers chosen by config, with fault knobs."""
