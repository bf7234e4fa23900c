"""Imports every module that registers a change handler, so the registry is complete."""

from countersign.services import (
    devices,
    directory,
    notification_channels,
    policies,
    rbac,
    resources,
    tenant_settings,
)

MODULES = (devices, directory, notification_channels, policies, rbac, resources, tenant_settings)
