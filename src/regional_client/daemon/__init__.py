"""The running process: ``server`` (start/stop order, signals), ``components`` (builders of the
optional services), ``services`` (the typed, frozen result), ``health``."""
