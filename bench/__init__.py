"""ccrouter's benchmark, soak and fault-injection tooling (`make bench`, `make soak`).

`bench.proc` runs ccrouter as a real subprocess against the in-process PBX simulator (used by
the benchmarks, the soak and the crash tests); `bench.daemon` is the instrumented daemon the
benchmarks start (the real `App`, plus a stats line on stdout).
"""
