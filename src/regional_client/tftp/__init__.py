"""Read-only TFTP server (RFC 1350/2347/2348/2349/7440): sans-IO session + asyncio shell.

Layout: ``packets`` (codec), ``session`` (transfer state machine, time passed in), ``paths``
(safe name resolution, shared with HTTP boot), ``source`` (the ``FileSource`` hook), ``server``
(sockets), ``stats`` (metrics), ``api`` (admin router), ``client`` (a small test/bench client).
"""
