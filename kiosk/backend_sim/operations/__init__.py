"""The backend simulator's item operations, one module per group of items, registered by name (registry.operation)."""
