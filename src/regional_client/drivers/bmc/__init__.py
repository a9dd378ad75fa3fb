"""BMC control: driver interface, IPMI and Redfish drivers, and the verified-operation facade.

The workflow calls :class:`BmcController`::

    target = bmc.target_for(task)                    # task["bmc"] + config defaults
    await bmc.set_boot_device(target, "pxe")          # verified by reading back
    await bmc.power_reset(target)                     # powers on if it was off
"""

from regional_client.drivers.bmc.base import (
    BmcDriver,
    BmcTarget,
    BootDevice,
    BootSetting,
    PowerState,
    SystemInfo,
)
from regional_client.drivers.bmc.controller import BmcController, PowerResult

__all__ = [
    "BmcController",
    "BmcDriver",
    "BmcTarget",
    "BootDevice",
    "BootSetting",
    "PowerResult",
    "PowerState",
    "SystemInfo",
]
