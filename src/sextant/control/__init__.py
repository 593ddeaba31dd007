"""Control plane: organizations, keys, applications. Relational, separate from the analytics store."""
