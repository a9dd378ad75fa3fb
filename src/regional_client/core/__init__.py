"""Ground floor: errors, structured logs, metrics, audit, identifiers, agent tokens, loop monitor.

Imports nothing else of the product (``metrics`` alone needs ``prometheus_client``).
"""
