"""The printing loaded ahead (Printing.warm_up, called at rest by the screen warmer): the first resident after a
restart does not wait on the printing screen while reportlab, the CJK font and the QR encoder load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: nothing of the printing stack is loaded before.
SCRIPT = """
import json, sys
from kiosk.services.workflow.production import Printing
from reportlab.pdfbase import pdfmetrics
from print_templates.fonts import FONT_NAME

before = ["reportlab.platypus" in sys.modules, FONT_NAME in pdfmetrics.getRegisteredFontNames()]
Printing(devices=None, journal=None, terminal_id="JN-TEST-0001", pdf_signer=None).warm_up()
after = ["reportlab.platypus" in sys.modules, FONT_NAME in pdfmetrics.getRegisteredFontNames()]
print(json.dumps({"before": before, "after": after}))
"""


def test_warm_up_loads_the_printing_and_leaves_no_file(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures == {"before": [False, False], "after": [True, True]}
    assert list(tmp_path.iterdir()) == []  # the specimen's folder is gone with it
