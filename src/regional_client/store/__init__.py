"""etcd access: the JSON store, key layout and the embedded etcd supervisor."""
