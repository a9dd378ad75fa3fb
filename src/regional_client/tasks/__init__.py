"""Task bookkeeping shared by the workflow and the APIs: the list+watch cache, the audit trail in
etcd, instance heartbeats and network-boot activity per MAC."""
