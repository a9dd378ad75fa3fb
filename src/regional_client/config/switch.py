"""``switch:`` section (owned by the switch component).

The seed's single-switch form (``type``, ``host``, ``username``, ...) is kept and becomes a
one-switch inventory named ``default``; ``inventory`` lists several switches. A ten-line config
needs only ``type``, ``host``, ``username`` and ``password``::

    switch:
      type: huawei
      host: 10.0.0.2
      username: netops
      password: enc:gAAAAB...      # decrypted with the secrets key at start
      install_vlan: 100
      production_vlan: 200
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from regional_client.config.base import Duration, Section


class SwitchEntry(Section):
    """One switch of the inventory."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    """Unique name, used by tasks (``switch.name``) and the admin API (``?switch=``)."""
    type: str = "cisco"
    """Vendor: ``cisco``/``cisco_ios``, ``huawei``/``huawei_vrp``, ``h3c``/``h3c_comware``,
    ``arista``/``arista_eos`` or a plugin's name (entry point group
    ``regional_client.switch_drivers``)."""
    vendor: str | None = None
    """Same as ``type`` (either spelling is accepted; ``vendor`` wins when both are given)."""
    host: str
    """Management address (IP or DNS name)."""
    port: int | None = Field(None, ge=1, le=65535)
    """SSH or HTTPS port; default 22 for SSH, 443 for eAPI."""
    username: str = "admin"
    password: str | None = Field(None, repr=False)
    """Login password; ``enc:...`` values are decrypted with the secrets key at start."""
    enable_password: str | None = Field(None, repr=False)
    """Privileged-mode secret (Cisco ``enable``); unset when the login lands in privileged
    mode. ``enc:`` allowed."""
    protocol: Literal["ssh", "snmp", "rest"] = "ssh"
    """``ssh`` (CLI), ``rest`` (Arista eAPI) or ``snmp`` (MAC lookup only, no changes)."""
    install_vlan: int = Field(100, ge=1, le=4094)
    """Access VLAN a server's port is put in while it installs."""
    production_vlan: int = Field(200, ge=1, le=4094)
    """Access VLAN after installation when the port's previous config is not known."""
    save_config: bool = False
    """Save the running config (``write memory``/``save``) after each successful batch."""
    snmp_community: str | None = Field(None, repr=False)
    """SNMP v2c community for MAC lookups (BRIDGE-MIB / Q-BRIDGE-MIB); ``enc:`` allowed."""
    snmp_port: int = Field(161, ge=1, le=65535)
    """UDP port of the switch's SNMP agent."""
    mac_lookup: Literal["auto", "cli", "snmp"] = "auto"
    """How to find a MAC: ``auto`` uses SNMP when a community is set, else the CLI/API."""
    ssh_known_hosts: str | None = None
    """OpenSSH known_hosts file the switch's SSH host key must be in (checked before the
    password is sent); unset: the key pinned on first use (``switch.host_keys``)."""
    verify_tls: bool = True
    """eAPI: verify the switch's HTTPS certificate (against ``ca_bundle`` when given)."""
    ca_bundle: str | None = None
    """eAPI: PEM file of the CA that signed the switch's certificate, or of the switch's own
    self-signed certificate (pinned)."""
    timeout: Duration | None = None
    """Per-operation timeout; default: the section's ``timeout``."""

    @property
    def vendor_name(self) -> str:
        return self.vendor or self.type


class SwitchConfig(Section):
    enabled: bool = True
    """Turn switch automation off (the workflow then skips the switch step)."""
    type: str = "cisco"
    """Seed form: vendor of the single switch (see ``SwitchEntry.type``)."""
    host: str | None = None
    """Seed form: the single switch's address; ignored when ``inventory`` is given."""
    port: int | None = Field(None, ge=1, le=65535)
    """Seed form: SSH/HTTPS port."""
    username: str = "admin"
    """Seed form: login user."""
    password: str | None = Field(None, repr=False)
    """Seed form: login password (``enc:`` allowed)."""
    enable_password: str | None = Field(None, repr=False)
    """Seed form: privileged-mode secret (``enc:`` allowed)."""
    protocol: Literal["ssh", "snmp", "rest"] = "ssh"
    """Seed form: ``ssh``, ``rest`` (eAPI) or ``snmp``."""
    install_vlan: int = Field(100, ge=1, le=4094)
    """Seed form and default for inventory entries: install VLAN."""
    production_vlan: int = Field(200, ge=1, le=4094)
    """Seed form: production VLAN."""
    save_config: bool = False
    """Seed form: save the running config after changes."""
    snmp_community: str | None = Field(None, repr=False)
    """Seed form: SNMP community for MAC lookups."""
    timeout: Duration = 30.0
    """Default per-operation timeout (connect, each command)."""
    batch_window: Duration = 0.2
    """Changes for one switch arriving within this window are applied in one session."""
    max_batch: int = Field(64, ge=1, le=1024)
    """At most this many port changes in one session."""
    inventory: list[SwitchEntry] = Field(default_factory=list)
    """Several switches; a task names one (``switch.name``) or its port is found by MAC."""
    host_keys: Literal["tofu", "known_hosts", "off"] = "tofu"
    """SSH host keys: pinned in etcd on first use (``tofu``), only from each entry's
    ``ssh_known_hosts`` file (``known_hosts``), or not checked (``off``). See
    ``drivers/switch/hostkeys.py`` and docs/security.md."""

    @model_validator(mode="after")
    def _unique_names(self) -> SwitchConfig:
        names = [e.name for e in self.inventory]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate switch names in inventory: {sorted(dup)}")
        if self.host_keys == "known_hosts":
            bare = [e.name for e in self.switches() if e.protocol == "ssh" and not
                    e.ssh_known_hosts]  # fmt: skip
            if bare:
                raise ValueError(f"host_keys: known_hosts, but no ssh_known_hosts for {bare}")
        return self

    def switches(self) -> list[SwitchEntry]:
        """The inventory, or the seed's single switch as an entry named ``default``."""
        if self.inventory:
            return list(self.inventory)
        if not self.host:
            return []
        return [
            SwitchEntry(
                name="default",
                type=self.type,
                host=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                enable_password=self.enable_password,
                protocol=self.protocol,
                install_vlan=self.install_vlan,
                production_vlan=self.production_vlan,
                save_config=self.save_config,
                snmp_community=self.snmp_community,
                snmp_port=161,
            )
        ]
