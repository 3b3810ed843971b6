"""Lets the template tests import their sample data module."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
