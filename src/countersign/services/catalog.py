"""Imports every module that registers a change handler, so the registry is complete."""

from countersign.services import devices, directory, policies, rbac, resources

MODULES = (devices, directory, policies, rbac, resources)
