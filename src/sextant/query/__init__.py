"""Query IR and the parsers of vendor query languages that produce it."""
