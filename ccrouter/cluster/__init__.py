"""Several ccrouter instances for several Asterisk nodes on one PostgreSQL database.

`model` (pure): the lease timing and the settings of the daemon that serves one node;
`lease`: the lease rows; `runner`: one process of the cluster, holding what leases it can and
running a daemon (`ccrouter.app.App`) for each node it holds; `cli`: `ccrouter cluster status`.
"""
