"""`make bench` (`python -m bench [--quick] [--only a,b]`): every figure next to its baseline,
measured in the same run, printed as a table and written to bench/results/bench-<time>.json
(and bench/results/latest.json).

Sections: agi (FastAGI round trips vs panoramisk and a raw stream server), ami (ingestion vs
panoramisk's parser and a bare splitter), e2e (simulator -> ccrouter daemon, sustained calls/s
with route p99 < 5 ms, on SQLite and on PostgreSQL; the AGI session as the caller sees it at
50 / 80 % of each, and where its time goes: bench/db_e2e.py), callback (dispatch latency,
bench/callback_bench.py), store (writer throughput; lookups on 10 M cards), pg (its own
PostgreSQL: lookups on 10 M cards, callback claims by 3 contending instances: bench/pg_lookup.py,
bench/claim_bench.py), memory (RSS with 5 000 operators, 2 000 live calls), routing (decide()
and membership diff, bench/routing_bench.py), cluster (lease takeover after SIGKILL of the
holder, bench/cluster_bench.py).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.progress import Progress, announce, fmt_duration

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("agi", "ami", "e2e", "callback", "store", "pg", "memory", "routing", "cluster")


SECTION_LIMIT_S = 900.0


def _arun(coro: Any, limit_s: float = SECTION_LIMIT_S) -> Any:
    """Run one async section on uvloop, bounded: a hung section fails, the others still run."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, limit_s)

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(bounded())
    return uvloop.run(bounded())


def run_section(name: str, quick: bool) -> dict[str, Any]:
    if name == "agi":
        from bench import agi_bench

        seconds, rounds = (1.0, 1) if quick else (2.0, 2)
        return dict(_arun(agi_bench.measure((1, 10, 100), seconds, rounds)))
    if name == "ami":
        from bench import ami_bench

        return ami_bench.measure(1000 if quick else 5000, 2 if quick else 3)
    if name == "e2e":
        from bench import db_e2e

        rates = (100, 300) if quick else (200, 400, 700, 1000, 1300, 1600, 1900, 2200, 2600,
                                          3000)  # fmt: skip
        return dict(_arun(db_e2e.measure(rates, 2.0 if quick else 4.0, 2.0 if quick else 6.0)))
    if name == "pg":
        from bench import pg_lookup

        cards, claims = (200_000, 1000) if quick else (10_000_000, 4000)
        return dict(_arun(pg_lookup.section(cards, 1000 if quick else 5000, claims)))
    if name == "memory":
        from bench import e2e

        ops, calls = (500, 200) if quick else (5000, 2000)
        return dict(_arun(e2e.memory(ops, calls)))
    if name == "store":
        from bench import store_bench

        return store_bench.measure(200_000 if quick else 10_000_000, 1000 if quick else 5000)
    if name == "callback":
        mod = importlib.import_module("bench.callback_bench")
        return dict(_arun(mod.measure(100 if quick else 1000), 120 if quick else 300))
    if name == "routing":
        mod = importlib.import_module("bench.routing_bench")
        return dict(mod.measure(500, 20) if quick else mod.measure())
    if name == "cluster":
        mod = importlib.import_module("bench.cluster_bench")
        return dict(_arun(mod.measure(5 if quick else 20), 300))
    raise ValueError(name)


Row = tuple[str, str, str, str, str, str]


def _f(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v = round(v, 2) if abs(v) < 100 else round(v)
    return f"{v:,}{unit}" if isinstance(v, int | float) else f"{v}{unit}"


def _within(ratio: float | None, limit: float) -> bool:
    return ratio is not None and ratio <= limit


def table(r: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []

    def add(figure: str, value: str, baseline: str, ratio: Any, target: str, ok: bool | None
            ) -> None:  # fmt: skip
        rows.append((figure, value, baseline, _f(ratio), target,
                     "-" if ok is None else ("yes" if ok else "MISSED")))  # fmt: skip

    if "agi" in r and "levels" in r["agi"]:
        for level, row in r["agi"]["levels"].items():
            cc, pa, raw = row["ccrouter"], row["panoramisk"], row["raw"]
            t_pa = row["ratio_time_ccrouter_vs_panoramisk"]
            t_raw = row["ratio_time_ccrouter_vs_raw"]
            add(f"FastAGI route, {level[1:]} concurrent: sessions/s",
                f"{_f(cc['sessions_per_s'])} (p50 {cc['p50_ms']} / p99 {cc['p99_ms']} ms)",
                f"panoramisk {_f(pa['sessions_per_s'])}, raw {_f(raw['sessions_per_s'])}",
                f"{t_pa} / {t_raw}", "time ratio <= 1.0 / <= 1.5",
                _within(t_pa, 1.0) and _within(t_raw, 1.5))  # fmt: skip
            c_pa = row.get("ratio_cpu_ccrouter_vs_panoramisk")
            c_raw = row.get("ratio_cpu_ccrouter_vs_raw")
            add(f"FastAGI route, {level[1:]} concurrent: server CPU/session",
                f"{_f(cc.get('cpu_us_per_session'))} µs",
                f"panoramisk {_f(pa.get('cpu_us_per_session'))}, "
                f"raw {_f(raw.get('cpu_us_per_session'))} µs",
                f"{c_pa} / {c_raw}", "CPU ratio <= 1.0 / <= 1.5",
                _within(c_pa, 1.0) and _within(c_raw, 1.5))  # fmt: skip
    if "ami" in r and "events_per_s" in r["ami"]:
        a = r["ami"]["events_per_s"]
        add("AMI ingestion (adapter + tracker): events/s", _f(a["ccrouter"]),
            f"panoramisk {_f(a['panoramisk'])}, splitter {_f(a['splitter'])}",
            f"{r['ami']['ratio_ccrouter_vs_panoramisk']} / "
            f"{r['ami']['ratio_ccrouter_vs_splitter']}",
            ">= 100,000", a["ccrouter"] >= 100_000)  # fmt: skip
    if "e2e" in r and "steps" in r["e2e"]:
        e = r["e2e"]
        best = max((s for s in e["steps"] if s["sustained"]), default=None,
                   key=lambda s: s["achieved_per_s"])  # fmt: skip
        add("End to end: sustained calls/s (decision p99 < 5 ms, caller's session p99 < 50 ms)",
            _f(e["sustained_calls_per_s"]),
            f"decision p99 {best['decide_p99_ms']} ms, caller's session p99 "
            f"{best.get('caller_p99_ms', '-')} ms, daemon's {best['route_p99_ms']} ms; "
            f"{_speed(best)}" if best else "-", None,
            ">= 1,000", e["sustained_calls_per_s"] >= 1000)  # fmt: skip
    if "e2e" in r and "sustained_calls_per_s" in r["e2e"].get("postgresql", {}):
        e, pg = r["e2e"], r["e2e"]["postgresql"]
        add("End to end on PostgreSQL: sustained calls/s", _f(pg.get("sustained_calls_per_s")),
            f"SQLite {_f(e['sustained_calls_per_s'])}", e.get("ratio_postgresql_vs_sqlite"),
            ">= 1,000 and >= 0.8x SQLite",
            pg.get("sustained_calls_per_s", 0) >= 1000
            and (e.get("ratio_postgresql_vs_sqlite") or 0) >= 0.8)  # fmt: skip
        rows.extend(latency_rows(e.get("latency", {})))
    if "pg" in r and "lookup" in r["pg"]:
        lk, cl = r["pg"]["lookup"], r["pg"]["claims"]
        cs, raw = lk["cardstore"], lk["raw_asyncpg"]
        add(f"PostgreSQL card lookup by number, {lk['cards_in_table']:,} cards",
            f"p50 {cs['p50_ms']} / p99 {cs['p99_ms']} ms",
            f"raw asyncpg p50 {raw['p50_ms']} / p99 {raw['p99_ms']} ms",
            round(cs["p99_ms"] / raw["p99_ms"], 1) if raw["p99_ms"] else None, "p99 <= 1 ms",
            cs["p99_ms"] <= 1.0)  # fmt: skip
        add(f"Callback claims, {cl['instances']} instances x {cl['concurrency_per_instance']} "
            "on one PostgreSQL: claims/s",
            f"{_f(cl['claims_per_s'])} ({cl['double_claims']} double claims)",
            f"rounds {cl.get('claims_per_s_rounds')}/s, {cl['requests']:,} requests each",
            None, ">= 1,000, 0 double", cl["claims_per_s"] >= 1000 and cl["double_claims"] == 0
            and bool(cl.get("claimed_all")))  # fmt: skip
    if "callback" in r and "p99_ms" in r["callback"]:
        c = r["callback"]
        add(f"Callback dispatch (free -> Originate), {c.get('samples')} samples",
            f"p50 {_f(c['p50_ms'])} / p99 {_f(c['p99_ms'])} ms", "-", None, "p99 <= 20 ms",
            c["p99_ms"] <= 20)  # fmt: skip
    if "store" in r and "writer" in r["store"]:
        s = r["store"]
        w = s["writer"]
        add("Card writer: cards/s (writes/s)", f"{_f(w['cards_per_s'])} ({_f(w['writes_per_s'])})",
            "e2e sustained rate " + _f(r.get("e2e", {}).get("sustained_calls_per_s")), None,
            ">= call rate", None)  # fmt: skip
        cs, raw = s["lookup_cardstore"], s["lookup_raw_sqlite3"]
        add(f"Card lookup by number, {s['cards_in_table']:,} cards",
            f"p50 {cs['p50_ms']} / p99 {cs['p99_ms']} ms",
            f"raw sqlite3 p50 {raw['p50_ms']} / p99 {raw['p99_ms']} ms",
            round(cs["p99_ms"] / raw["p99_ms"], 1) if raw["p99_ms"] else None, "p99 <= 1 ms",
            cs["p99_ms"] <= 1.0)  # fmt: skip
    if "memory" in r and "rss_mb" in r["memory"]:
        m = r["memory"]
        add(f"RSS, {m['operators']:,} operators + {m['live_calls']:,} live calls",
            f"{_f(m['rss_mb'])} MB", f"idle {_f(m['rss_idle_mb'])} MB", None, "<= 200 MB",
            m["rss_mb"] <= 200 and m["live_calls"] >= 2000)  # fmt: skip
    if "routing" in r and "decisions_per_s" in r["routing"]:
        g = r["routing"]
        add("Routing decide(): decisions/s", f"{_f(g['decisions_per_s'])} (p99 {g['p99_ms']} ms)",
            "-", None, "-", None)  # fmt: skip
    if "cluster" in r and "moved_p50_ms" in r["cluster"]:
        c = r["cluster"]
        add(f"Lease takeover after SIGKILL, {c['kills']} kills: lease moved p50 / p99",
            f"{c['moved_p50_ms']} / {c['moved_p99_ms']} ms",
            f"serving again p50 {c['serving_p50_ms']} / p99 {c['serving_p99_ms']} ms", None,
            f"<= lease_s ({c['lease_s']} s)", c["within_lease"])  # fmt: skip
    for name, res in r.items():
        if isinstance(res, dict) and "error" in res:
            add(f"{name}: FAILED", res["error"][:60], "-", None, "-", False)
    return rows


def _speed(step: dict[str, Any]) -> str:
    """How fast the machine ran just before the step (bench/db_e2e.py)."""
    return f"machine speed probe {step['speed_ms']} ms" if "speed_ms" in step else "-"


def latency_rows(latency: dict[str, Any]) -> list[Row]:
    """The caller's AGI session at 50 / 80 % of each database's sustained rate."""
    rows: list[Row] = []
    for db, levels in latency.items():
        for level, step in levels.items() if isinstance(levels, dict) else ():
            t = step.get("trace", {}) if isinstance(step, dict) else {}
            if "caller_session" not in t:
                continue
            c, own = t["caller_session"], t["daemon_own"]
            shares = (round(t["slowest_1pct_daemon_share"] * 100),
                      round(t["slowest_1pct_sim_share"] * 100))
            rows.append((
                f"AGI route session seen by the caller, {db}, {level} "
                f"({_f(step['achieved_per_s'])} calls/s)",
                f"p50 {c['p50_ms']} / p99 {c['p99_ms']} ms",
                f"{_speed(step)}; ccrouter's own part p99 {own['p99_ms']} ms; slowest 1 %: "
                f"{shares[0]} % "
                f"waiting for ccrouter, {shares[1]} % for the simulator; other processes "
                f"took {step.get('other_cpu_cores', '-')} cores meanwhile", "-",
                "p99 <= 20 ms (at 80 %)",
                "-" if level != "80%" else ("yes" if c["p99_ms"] <= 20 else "MISSED")))
    return rows


def print_table(rows: list[Row]) -> None:
    head: Row = ("figure", "measured", "baseline (same run)", "ratio", "target", "met")
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(6)]
    for row in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


FULL_RUN_S = 390.0
"""A full run here with the 10 M-card table cached (README "Performance")."""


def _last_seconds(quick: bool) -> dict[str, float]:
    """Each section's duration in the last run of the same kind (bench/results/latest.json)."""
    try:
        last = json.loads((RESULTS / "latest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(last, dict) or bool(last.get("quick")) != quick:
        return {}
    return {name: float(r["seconds"]) for name, r in last.items()
            if isinstance(r, dict) and isinstance(r.get("seconds"), int | float)}  # fmt: skip


def section_estimate(name: str, quick: bool) -> str:
    took = _last_seconds(quick).get(name)
    return f" (about {fmt_duration(took)}, as the last run)" if took else ""


def print_estimate(sections: list[str], quick: bool) -> None:
    """How long the run takes: the last run's sections when known, else the README's figure."""
    last = _last_seconds(quick)
    table_built = (store_cache() / "cards-10000000.db").exists()
    note = ""
    if "store" in sections and not quick and not table_built:
        note = "plus a one-time build of the 10 M-card table into bench/cache/ (progress below)"
    if "pg" in sections and not quick:
        note = "; ".join(filter(None, [note, "section pg loads 10 M cards into its own "
                                       "PostgreSQL every run (1.5-2 min of it)"]))  # fmt: skip
    if all(name in last for name in sections):
        announce("bench", sum(last[name] for name in sections),
                 "as the last run here" + (f"; {note}" if note else ""))
    elif not quick and tuple(sections) == SECTIONS:
        announce("bench", FULL_RUN_S, "on this project's 2-core machines"
                 + (f"; {note}" if note else ""))  # fmt: skip
    else:
        announce("bench", None, note or "no earlier run of these sections to go by")


def store_cache() -> Path:
    from bench.store_bench import CACHE

    return CACHE


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default: all: {','.join(SECTIONS)})")
    args = parser.parse_args(argv)
    from ccrouter.config import LogSettings
    from ccrouter.logs import configure_logging

    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    configure_logging(LogSettings(format="json", level="info"), stream=devnull)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_avg": os.getloadavg()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }  # fmt: skip
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    for name in sections:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
    print_estimate(sections, args.quick)
    progress = Progress("[bench]", total=len(sections), unit="sections")
    results["quick"] = args.quick
    for name in sections:
        print(f"[bench] {name} ...{section_estimate(name, args.quick)}", flush=True)
        started = time.monotonic()
        try:
            results[name] = run_section(name, args.quick)
        except ModuleNotFoundError as exc:
            results[name] = {"skipped": f"{exc.name} not available"}
        except Exception as exc:  # one broken section must not lose the others' figures
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results[name]["seconds"] = round(time.monotonic() - started, 1)
        print(f"[bench] {name} done in {fmt_duration(results[name]['seconds'])}", flush=True)
        progress.step(force=True)
    results["machine"]["load_avg_end"] = os.getloadavg()
    print()
    print_table(table(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in (RESULTS / f"bench-{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {RESULTS / f'bench-{stamp}.json'} (load average "
          f"{results['machine']['load_avg'][0]:.1f} -> {results['machine']['load_avg_end'][0]:.1f}"
          f" on {results['machine']['cpus']} CPUs)")  # fmt: skip
    return 0


_: Callable[..., Any] = main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
