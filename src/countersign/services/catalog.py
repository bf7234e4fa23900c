"""Imports every module that registers a change handler, so the registry is complete."""

from countersign.services import devices, directory, rbac, resources

MODULES = (devices, directory, rbac, resources)
