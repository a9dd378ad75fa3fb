"""etcd key layout (SPEC §3). Every key the product reads or writes is built here."""

from __future__ import annotations

from regional_client.core.ids import check_sn, normalize_mac


class Keys:
    """Key builders for one IDC: ``Keys("dc1").task("SN1") == "/os/dc1/machines/SN1/task"``."""

    def __init__(self, idc: str) -> None:
        self.idc = idc
        self.root = f"/os/{idc}/"
        self.machines_prefix = f"/os/{idc}/machines/"
        self.servers_prefix = f"/os/{idc}/servers/"
        self.leases_prefix = f"/os/{idc}/dhcp/leases/"
        self.bindings_prefix = f"/os/{idc}/dhcp/bindings/"
        self.regional_prefix = f"/os/{idc}/regional/"

    def task(self, sn: str) -> str:
        return f"{self.machines_prefix}{check_sn(sn)}/task"

    def server(self, sn: str) -> str:
        return f"{self.servers_prefix}{check_sn(sn)}"

    def lease(self, mac: str) -> str:
        return f"{self.leases_prefix}{normalize_mac(mac)}"

    def binding(self, mac: str) -> str:
        return f"{self.bindings_prefix}{normalize_mac(mac)}"

    def instance(self, instance_id: str) -> str:
        return f"{self.regional_prefix}instances/{instance_id}"

    @property
    def audit_prefix(self) -> str:
        return f"{self.regional_prefix}audit/"

    def audit(self, sn: str) -> str:
        return f"{self.audit_prefix}{check_sn(sn)}/"

    def sn_from_task_key(self, key: str) -> str | None:
        """``/os/dc1/machines/SN1/task`` → ``SN1``; None for any other key."""
        if not key.startswith(self.machines_prefix) or not key.endswith("/task"):
            return None
        sn = key[len(self.machines_prefix) : -len("/task")]
        return sn if sn and "/" not in sn else None

    def sn_from_server_key(self, key: str) -> str | None:
        if not key.startswith(self.servers_prefix):
            return None
        sn = key[len(self.servers_prefix) :]
        return sn if sn and "/" not in sn else None
