"""ICAO 9303 eMRTD reading: MRZ, BAC, secure messaging, LDS parsing, passive authentication.

Pure protocol code over bytes; the PC/SC transport lives in kiosk.hardware.pcsc_reader.
"""
