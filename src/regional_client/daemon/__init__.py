"""The running process: ``server`` (start/stop order, signals), ``components`` (builders of the
optional services), ``runtime`` (what API routes reach)."""
