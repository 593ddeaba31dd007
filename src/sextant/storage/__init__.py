"""Storage: one Backend protocol, one implementation per engine; each compiles the core IR to its SQL."""
