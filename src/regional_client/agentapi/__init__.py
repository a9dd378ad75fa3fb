"""The agent protocol (SPEC §5): ``service`` (logic over the cache and store), ``progress``
(coalescing), ``http`` (the FastAPI routes). Agent tokens: :mod:`regional_client.core.tokens`."""
