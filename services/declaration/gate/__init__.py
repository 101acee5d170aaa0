"""The gate: staff check visitors, declare for them, and keep working without network."""
