"""`kiosk ui-audit`: every screen rendered offscreen in both languages and modes, and checked.

rules.py holds the limits and the pure checks (contrast, scripts); widgets.py reads a
rendered frame and the widget tree into violations; scenes.py puts the running app on
each screen and state with demo data; command.py runs them all and reports.
"""
