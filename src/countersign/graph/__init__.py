"""Graph metadata: the types, properties and enums Countersign serves (from Microsoft's SDK)."""
