"""etcd access: the JSON store, key layout and the embedded etcd supervisor."""

from regional_client.store.etcd import DELETE, KV, EtcdStore, KeptLease, WatchEvent
from regional_client.store.keys import Keys, check_sn, normalize_mac

__all__ = [
    "DELETE",
    "KV",
    "EtcdStore",
    "KeptLease",
    "Keys",
    "WatchEvent",
    "check_sn",
    "normalize_mac",
]
