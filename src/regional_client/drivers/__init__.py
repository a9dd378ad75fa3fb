"""Device drivers (switches, BMCs): small interfaces, one module per protocol or vendor."""
