"""DHCPv4 server for network boot: codec, responder, leases, etcd store, asyncio server, API."""
