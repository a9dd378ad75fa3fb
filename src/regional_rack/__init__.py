"""Virtual rack: simulated BMCs, switches and PXE clients for tests and demos."""
