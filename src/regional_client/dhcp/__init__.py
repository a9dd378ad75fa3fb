"""DHCPv4 server for network boot.

Layers (protocol logic separate from I/O): :mod:`.packet` codec → :mod:`.leases` address
bookkeeping → :mod:`.options` / :mod:`.responder` decisions (all sans-IO) → :mod:`.store` (etcd)
→ :mod:`.server` sockets → :mod:`.service` the component (public API) → :mod:`.api` admin routes;
``daemon.components.build_dhcp`` builds it.
"""
