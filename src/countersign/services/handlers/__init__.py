"""One module per collection family, each a `CollectionHandler` (base.py) with the family's
Graph bodies, serialisers and lookups: resources (apps, scripts, policies), devices, directory
(users, groups, service principals), rbac, policies (access policies), tenant_settings,
notification_channels. `services/catalog.py` lists them."""
