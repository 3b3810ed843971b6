"""The soak: many residents in one kiosk process, with faults, to find leaks, stuck screens and lost money.

``python -m kiosk.soak`` (``make soak``) runs two soaks beside each other's results:

- the UI soak: the kiosk built as ``kiosk run --headless`` builds it (``prepare_kivy``,
  ``build_runtime``, ``KioskApp``), driven in-process by the demo's :class:`~kiosk.demo.driver.UiDriver`
  and a scripted resident per session (:mod:`kiosk.soak.ui_soak`), with the chip reader on the
  PC/SC path (a private pcscd and the project's virtual chip, :mod:`kiosk.soak.chip`);
- the engine-only soak: the workflow engine, simulators and backend simulator without Kivy
  (:mod:`kiosk.soak.engine_soak`).

Each plans its sessions from a seeded RNG (:mod:`kiosk.soak.plan`), injects faults into 5% of
them and counts each where it is applied (:mod:`kiosk.soak.faults`), samples the process every
100 sessions (:mod:`kiosk.soak.sampler`), reconciles the backend's payment ledger with the
journal at the end (:mod:`kiosk.soak.ledger`) and writes ``soak.json`` (:mod:`kiosk.soak.report`).
"""
