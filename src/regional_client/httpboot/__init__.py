"""HTTP boot: the TFTP root and per-MAC iPXE scripts over HTTP on the API port."""
