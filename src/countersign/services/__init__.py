"""Use cases: each loads through a session, applies the domain rules and writes the audit entry
in the same transaction."""
