"""Countersign: a device-management admin plane where high-impact changes need two admins."""

__version__ = "0.1.0"
