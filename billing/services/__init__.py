"""Services: verb_noun functions that take plain values or models, flush, and never commit."""
