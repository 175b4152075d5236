#!/usr/bin/env python3
"""Timesketch's own import path over our JSON lines, offline.

    ingest.py --check          exit 0 if Timesketch's packages are installed, 3 (and why) if not
    ingest.py FILE.jsonl...    exit 0 and a JSON summary if every line is taken as it is

Each file goes through the two halves of an upload, as Timesketch runs them:
1. the client (`timesketch-import-client`): `ImportStreamer.add_file` reads the JSON lines and
   readies each event for upload (`_fix_dict`). The upload itself needs a server (a sketch on a
   Timesketch API); the streamer here is the client's own test double (`importer_test.MockStreamer`
   and `MockSketch`), which keeps the events instead of posting them. The client drops a line it
   cannot read with only a log message, and fills in a field that is missing, so both are checked:
   every line uploaded, and nothing added or removed (`datetime` is re-written by dateutil: it must
   be the same instant as `timestamp`).
2. the server (`timesketch`, its worker's `run_csv_jsonl`): the uploaded body, one JSON line an
   event, goes through `timesketch.lib.utils.read_and_validate_jsonl`, the validator that raises on
   a missing `message`, `datetime` or `timestamp_desc`, then through the worker's field-mapping
   limit (each distinct key counts twice, plus 10%, against 1000). Only indexing into OpenSearch
   (where `datetime` is mapped as a `date`) is left out: it needs an OpenSearch cluster.
"""

import io
import json
import logging
import sys

import dateutil.parser

# The worker's default OPENSEARCH_MAPPING_UPPER_LIMIT and buffer (timesketch/lib/tasks.py).
MAPPING_UPPER_LIMIT = 1000
MAPPING_BUFFER = 0.1


def check():
    try:
        import timesketch.lib.utils  # noqa: F401
        import timesketch_import_client.importer_test  # noqa: F401
    except ImportError as e:
        print(f"Timesketch's packages: {e}", file=sys.stderr)
        sys.exit(3)


class Dropped(logging.Handler):
    """The client's log of lines it could not read (it drops them and goes on)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def micros(datetime_text):
    d = dateutil.parser.isoparse(datetime_text)
    if d.tzinfo is None:
        raise ValueError(f"no time zone in {datetime_text!r}")
    return int(d.timestamp()) * 1_000_000 + d.microsecond


def client_upload(path, errors):
    """What the import client would post for `path`: its events as one JSON-lines body."""
    from timesketch_import_client.importer_test import MockSketch, MockStreamer

    dropped = Dropped()
    logging.getLogger("timesketch_importer.importer").addHandler(dropped)
    streamer = MockStreamer()
    streamer.set_sketch(MockSketch())
    streamer.add_file(path)
    streamer.flush()
    logging.getLogger("timesketch_importer.importer").removeHandler(dropped)
    errors.extend(f"{path}: client: {m}" for m in dropped.messages)

    with open(path, encoding="utf-8") as f:
        ours = f.read().splitlines()
    if len(streamer.lines) != len(ours):
        errors.append(f"{path}: client took {len(streamer.lines)} of {len(ours)} lines")
        return "", len(ours)
    for n, (mine, up) in enumerate(zip(map(json.loads, ours), streamer.lines), 1):
        changed = sorted(k for k in mine.keys() | up.keys() if k != "datetime" and mine.get(k) != up.get(k))
        if changed:
            errors.append(f"{path}:{n}: the client changed {changed}")
        try:
            if micros(up["datetime"]) != mine["timestamp"]:
                errors.append(f"{path}:{n}: datetime {up['datetime']!r} is not timestamp {mine['timestamp']}")
        except (KeyError, ValueError) as e:
            errors.append(f"{path}:{n}: datetime as uploaded: {e!r}")
    # As ImportStreamer._upload_data_buffer serializes them.
    return "\n".join(json.dumps(x) for x in streamer.lines), len(ours)


def server_ingest(path, body, want, errors):
    """The worker's validation of an uploaded body; how many events it would index."""
    from timesketch.lib import utils

    keys = set()
    n = 0
    try:
        for event in utils.read_and_validate_jsonl(io.StringIO(body)):
            keys.update(event.keys())
            n += 1
    except Exception as e:  # noqa: BLE001 -- what the worker would fail the upload with
        errors.append(f"{path}: server: {type(e).__name__}: {e}")
    if n != want:
        errors.append(f"{path}: server validated {n} of {want} lines")
    limit = int(len(keys) * 2 * (1 + MAPPING_BUFFER))
    if limit > MAPPING_UPPER_LIMIT:
        errors.append(f"{path}: {len(keys)} distinct keys exceed the mapping limit")
    return n, len(keys)


def main():
    if sys.argv[1:] == ["--check"]:
        return check()
    check()
    errors = []
    summary = {}
    for path in sys.argv[1:]:
        body, lines = client_upload(path, errors)
        indexed, keys = server_ingest(path, body, lines, errors)
        summary[path] = {"lines": lines, "validated": indexed, "keys": keys}
    if errors:
        print("\n".join(errors[:50]), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
