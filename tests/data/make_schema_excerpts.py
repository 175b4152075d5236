#!/usr/bin/env python3
"""Regenerates the schema excerpts that tests/it/formats.rs validates exports against.

  ocsf-1.3.0-excerpt.json: OCSF 1.3.0 (github.com/ocsf/ocsf-schema, tag 1.3.0, Apache-2.0),
    compiled with ocsf-lib 0.10.4 (PyPI):
      python -m ocsf.compile ocsf-schema --ignore-extension linux windows > ocsf.json
    then cut to classes 1001, 1007 and 2004 and the objects they reach; attributes of profiles
    other than `host` and `container` (the ones our events declare) are left out.
  ecs-8.17.0-excerpt.json: ECS 8.17.0 (github.com/elastic/ecs, tag v8.17.0,
    generated/ecs/ecs_flat.yml, Apache-2.0), the field sets our formats use.

Usage: make_schema_excerpts.py ocsf.json ecs_flat.yml  (writes both files here)
"""
import json
import os
import sys

import yaml

PROFILES = {"host", "container"}
CLASSES = ["file_activity", "process_activity", "detection_finding"]
ECS_SETS = {"ecs", "event", "file", "process", "user", "group", "host", "container", "rule"}
ECS_BASE = {"@timestamp", "message", "tags", "labels"}


def attrs(a):
    out = {}
    for name, v in sorted(a.items()):
        if v.get("profile") and v["profile"] not in PROFILES:
            continue
        x = {"type": v["type"], "requirement": v.get("requirement") or "optional"}
        if v.get("is_array"):
            x["is_array"] = True
        if v.get("enum"):
            x["enum"] = sorted(int(k) if v["type"] != "string_t" else k for k in v["enum"])
        out[name] = x
    return out


def ocsf(path):
    s = json.load(open(path))
    objects, todo = {}, []
    classes = {}
    for c in CLASSES:
        k = s["classes"][c]
        a = attrs(k["attributes"])
        classes[str(k["uid"])] = {"name": c, "category_uid": s["categories"][k["category"]]["uid"], "attributes": a}
        todo += [v["type"] for v in a.values()]
    while todo:
        t = todo.pop()
        if t in objects or t not in s["objects"]:
            continue
        objects[t] = {"attributes": attrs(s["objects"][t]["attributes"])}
        todo += [v["type"] for v in objects[t]["attributes"].values()]
    types = {n: t.get("type") or n for n, t in s["types"].items()}
    return {"version": s["version"], "profiles": sorted(PROFILES), "classes": classes,
            "objects": dict(sorted(objects.items())), "types": types}


def ecs(path):
    d = yaml.safe_load(open(path))
    out = {}
    for name, f in sorted(d.items()):
        if name.split(".")[0] not in ECS_SETS and name not in ECS_BASE:
            continue
        x = {"type": f["type"]}
        if "array" in (f.get("normalize") or []):
            x["array"] = True
        if f.get("allowed_values"):
            x["allowed"] = [v["name"] for v in f["allowed_values"]]
        out[name] = x
    return {"version": "8.17.0", "fields": out}


here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "ocsf-1.3.0-excerpt.json"), "w") as f:
    json.dump(ocsf(sys.argv[1]), f, indent=0, sort_keys=False)
    f.write("\n")
with open(os.path.join(here, "ecs-8.17.0-excerpt.json"), "w") as f:
    json.dump(ecs(sys.argv[2]), f, indent=0)
    f.write("\n")
