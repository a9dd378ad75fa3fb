"""etcd access: the JSON store, key layout and the embedded etcd supervisor."""

from regional_client.core.ids import check_sn, normalize_mac
from regional_client.store.etcd import DELETE, KV, EtcdStore, KeptLease, WatchEvent
from regional_client.store.keys import Keys

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
