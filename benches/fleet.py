#!/usr/bin/env python3
"""Fleet figures: Parquet vs sealed segments, export speed, the compiled rules on DuckDB and Spark.

    cargo build --release && python3 benches/fleet.py [--hosts 3] [--events 300000] \
        [--rules fixtures/rules/detections.yaml] [--bin target/release/open-forensics]

Root (or user namespaces): each host's store is imported in a UTS namespace of its own, since a
store takes its host name from the kernel. Events come from tests/fleet/gen.py (the multi-host
test's generator: uniform over a few hundred paths, comms and processes, 80% with lineage), so
the figures compare formats on the same events rather than predict a real host's sizes.

Every figure is reported with its baseline from the same run:
- bytes/event of the Parquet events files vs the sealed `.seg.zst` segments holding the same
  events (and all Parquet files: events + processes + losses);
- `export --format parquet` events/s vs `export` as JSON lines to /dev/null;
- the compiled rule set's run time on DuckDB and on Spark (local[2], session start excluded and
  reported apart) vs `replay` of the same rules over the same stores; each engine's alert count
  must equal replay's.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, **kw):
    t = time.monotonic()
    out = sh(cmd, **kw)
    return time.monotonic() - t, out


def files_bytes(top, suffix):
    total = 0
    for d, _, fs in os.walk(top):
        total += sum(os.path.getsize(os.path.join(d, f)) for f in fs if f.endswith(suffix))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--events", type=int, default=300_000, help="events per host")
    ap.add_argument("--rules", default=os.path.join(ROOT, "fixtures/rules/detections.yaml"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/open-forensics"))
    ap.add_argument("--no-spark", action="store_true")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="of-fleet-bench-")
    hosts = [f"host-{i:02d}" for i in range(a.hosts)]
    stores, total = [], 0
    for h in hosts:
        jsonl = os.path.join(tmp, f"{h}.jsonl")
        with open(jsonl, "w") as f:
            sh([sys.executable, os.path.join(ROOT, "tests/fleet/gen.py"), "--host", h,
                "--events", str(a.events)], stdout=f)
        store = os.path.join(tmp, f"store-{h}")
        pre = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        sh(["unshare", *pre, "--uts", "sh", "-c",
            'hostname "$1" && exec "$2" --store "$3" import "$4"', "sh", h, a.bin, store, jsonl],
           stderr=subprocess.DEVNULL)
        os.remove(jsonl)
        stores.append(store)
        total += a.events

    sealed = sum(files_bytes(s, ".seg.zst") for s in stores)
    out = os.path.join(tmp, "fleet")
    t_json = t_pq = 0.0
    for s in stores:
        with open(os.devnull, "w") as null:
            dt, _ = timed([a.bin, "--store", s, "export"], stdout=null)
        t_json += dt
        dt, _ = timed([a.bin, "--store", s, "export", "--format", "parquet", "--out", out],
                      stderr=subprocess.DEVNULL)
        t_pq += dt
    pq_events = files_bytes(os.path.join(out, "events"), ".parquet")
    pq_all = files_bytes(out, ".parquet")

    t_replay = 0.0
    replay_alerts = 0
    for s in stores:
        dt, r = timed([a.bin, "--store", s, "replay", "--rules", a.rules], capture_output=True)
        t_replay += dt
        replay_alerts += r.stdout.count(b"\n")

    engines = {}
    for engine in ["duckdb"] + ([] if a.no_spark else ["spark"]):
        sql = os.path.join(tmp, f"rules.{engine}.sql")
        with open(sql, "wb") as f:
            sh([a.bin, "rules", "sql", a.rules, "--dialect", engine], stdout=f)
        manifest = os.path.join(tmp, f"{engine}.json")
        res = os.path.join(tmp, f"{engine}.out")
        json.dump({"jobs": [{"name": "bench", "parquet": out, "sql": sql, "out": res}]},
                  open(manifest, "w"))
        t = time.monotonic()
        r = sh([sys.executable, os.path.join(ROOT, "tests/fleet/run_sql.py"), engine, manifest],
               capture_output=True)
        wall = time.monotonic() - t
        job = json.loads(r.stdout)["jobs"][0]
        engines[engine] = {"query_s": job["seconds"], "rows": job["rows"],
                           "process_wall_s": round(wall, 2),
                           "vs_replay": round(job["seconds"] / t_replay, 2),
                           "same_count_as_replay": job["rows"] == replay_alerts}

    print(json.dumps({
        "hosts": a.hosts, "events": total, "rules": os.path.relpath(a.rules, ROOT),
        "sealed_bytes_per_event": round(sealed / total, 2),
        "parquet_events_bytes_per_event": round(pq_events / total, 2),
        "parquet_all_bytes_per_event": round(pq_all / total, 2),
        "parquet_over_sealed": round(pq_events / sealed, 2),
        "export_parquet_events_per_s": round(total / t_pq),
        "export_jsonl_events_per_s": round(total / t_json),
        "parquet_over_jsonl_time": round(t_pq / t_json, 2),
        "replay_s": round(t_replay, 2), "replay_alerts": replay_alerts,
        "engines": engines, "dir": tmp,
    }, indent=2))


if __name__ == "__main__":
    main()
