"""Pure rules of Countersign: no web framework, no database, no I/O."""
