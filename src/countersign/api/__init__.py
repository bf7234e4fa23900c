"""The Graph-compatible HTTP API: translation between HTTP and the services, no business rules."""
