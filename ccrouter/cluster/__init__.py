"""Several ccrouter instances for several Asterisk nodes on one PostgreSQL database.

`model` (pure): the lease timing, the settings of the daemon that serves one node and the
standby's AMI event buffer; `lease`: the lease rows; `runner`: one process of the cluster,
holding what leases it can and running a daemon (`ccrouter.app.App`) for each node it holds;
`standby`: a node's FastAGI port while this instance does not serve it; `watch`: its AMI
connection meanwhile; `cli`: `ccrouter cluster status`.
"""
