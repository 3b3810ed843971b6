"""Printing: A4 documents (reportlab PDF, ``documents``) and receipts (ESC/POS bytes, ``receipts``)."""
