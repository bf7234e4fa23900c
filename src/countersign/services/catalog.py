"""Imports every module that registers a change handler, so the registry is complete."""

from countersign.services import directory, rbac

MODULES = (directory, rbac)
