"""The agent protocol (SPEC §5): ``service`` (logic over the cache and store), ``progress``
(coalescing), ``tokens`` (everything about agent tokens), ``http`` (the FastAPI routes)."""
