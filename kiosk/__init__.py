"""Software for 24-hour self-service police kiosks."""
__version__ = "0.1.0"
