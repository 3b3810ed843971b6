"""Printing: A4 documents (reportlab PDF, ``documents``), receipts (ESC/POS bytes, ``receipts``) and reading receipts back (``escpos_decode``)."""
