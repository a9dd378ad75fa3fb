"""Admin API: what the TFTP/HTTP boot root serves, and the transfers in flight (audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query

from regional_client.api.auth import AdminAuth
from regional_client.core.audit import Audit
from regional_client.tftp.paths import SafeRoot
from regional_client.tftp.server import TftpServer

__all__ = ["router"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def router(
    root_dir: Path, server: TftpServer | None, auth: AdminAuth, audit: Audit
) -> APIRouter:
    """The listing works with TFTP disabled too: HTTP boot serves the same root."""
    r = APIRouter(tags=["tftp"])

    @r.get("/admin/tftp/files")
    async def files(
        prefix: str = Query("", description="only files under this root-relative folder"),
        limit: int = Query(1000, ge=1, le=100000),
        actor: str = Depends(auth),
    ) -> dict[str, Any]:
        root = SafeRoot(root_dir)
        try:
            entries = list(root.list(limit=limit + 1, prefix=prefix))
        except Exception as e:
            audit.record(actor, "tftp.files.list", "tftp", result=str(e), prefix=prefix)
            raise
        transfers = []
        if server is not None:
            for t in server.list_transfers():
                transfers.append(
                    {
                        "peer": f"{t.peer[0]}:{t.peer[1]}",
                        "file": t.file,
                        "size": t.size,
                        "sent": t.acked_bytes,
                        "blksize": t.blksize,
                        "windowsize": t.windowsize,
                        "started_at": _iso(t.started),
                    }
                )
        audit.record(actor, "tftp.files.list", "tftp", prefix=prefix, count=len(entries))
        return {
            "root": str(root_dir),
            "running": bool(server is not None and server.running),
            "files": [
                {"name": e.name, "size": e.size, "mtime": _iso(e.mtime)} for e in entries[:limit]
            ],
            "truncated": len(entries) > limit,
            "transfers": transfers,
        }

    return r
