#!/usr/bin/env python3
"""Runs queries compiled by `open-forensics rules sql` on a real engine, over exported Parquet.

    run_sql.py ENGINE MANIFEST       ENGINE: duckdb | spark
    run_sql.py ENGINE --check        exit 0 if the engine can run here, 3 (and why) if not

MANIFEST is JSON: {"jobs": [{"name": N, "parquet": DIR, "sql": FILE, "out": FILE}, ...]}.
For each job the relation `events` is defined over DIR/events (Hive partitions `host=`, `date=`)
exactly as a user would, the query runs unchanged inside `SELECT * FROM (<query>)`, and every
alert row goes to `out` as one JSON object with the event's time in ns (`ts_ns`). One engine
session serves every job. Prints {"jobs": [{"name", "rows", "seconds"}...]} on stdout.

Spark reads DIR as it reads object storage (a `file://` URI of the same layout an `s3a://`
bucket would have), with `spark.sql.legacy.parquet.nanosAsLong=true`: Spark has no nanosecond
timestamps, so `ts` arrives as ns since the epoch.
"""

import json
import sys
import time

MISSING = 3


def check(engine):
    try:
        if engine == "duckdb":
            import duckdb  # noqa: F401
        else:
            import pyspark  # noqa: F401
            import shutil
            if shutil.which("java") is None:
                raise ImportError("no `java` on PATH (Spark needs a Java runtime)")
    except ImportError as e:
        print(f"{engine} is not available: {e}", file=sys.stderr)
        sys.exit(MISSING)



# The columns compared with `replay` (every other column of the query is passed through).
KEYS = ["rule", "host", "segment", "seq", "pid", "tid", "ppid", "comm", "comm_b64",
        "path", "path_b64", "raw_path", "raw_path_b64", "syscall", "flags", "ret",
        "matched", "severity", "uid", "gid"]


def outer(sql, quote, ts_ns):
    cols = ", ".join(quote + k + quote for k in KEYS)
    return f"SELECT {cols}, {ts_ns} AS ts_ns FROM (\n{sql}\n) q"


def write_rows(path, cols, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(dict(zip(cols, row))) + "\n")


def run_duckdb(jobs):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    report = []
    for j in jobs:
        sql = open(j["sql"], encoding="utf-8").read()
        events = j["parquet"].rstrip("/") + "/events/**/*.parquet"
        con.execute(
            "CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet("
            + "'" + events.replace("'", "''") + "', hive_partitioning = true, union_by_name = true)")
        t = time.monotonic()
        cur = con.execute(outer(sql, '"', 'epoch_ns("ts")'))
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
        secs = time.monotonic() - t
        write_rows(j["out"], cols, rows)
        report.append({"name": j["name"], "rows": len(rows), "seconds": round(secs, 3)})
    return report


def run_spark(jobs):
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("open-forensics-fleet-test")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.sql.legacy.parquet.nanosAsLong", "true")
             .config("spark.driver.memory", "1g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    report = []
    try:
        for j in jobs:
            sql = open(j["sql"], encoding="utf-8").read()
            uri = "file://" + j["parquet"].rstrip("/") + "/events"
            spark.read.parquet(uri).createOrReplaceTempView("events")
            t = time.monotonic()
            df = spark.sql(outer(sql, "`", "`ts`"))
            rows = [tuple(r) for r in df.collect()]
            secs = time.monotonic() - t
            write_rows(j["out"], df.columns, rows)
            report.append({"name": j["name"], "rows": len(rows), "seconds": round(secs, 3)})
    finally:
        spark.stop()
    return report


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("duckdb", "spark"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    engine = sys.argv[1]
    check(engine)
    if sys.argv[2] == "--check":
        return
    jobs = json.load(open(sys.argv[2], encoding="utf-8"))["jobs"]
    report = run_duckdb(jobs) if engine == "duckdb" else run_spark(jobs)
    print(json.dumps({"engine": engine, "jobs": report}))


if __name__ == "__main__":
    main()
