#!/usr/bin/env python3
"""pySigma as the oracle for `rules import-sigma`: what each vendored Sigma rule means.

    oracle.py SIGMA_DIR CONVERTED_YAML OUT_DIR

For every Sigma rule under SIGMA_DIR that CONVERTED_YAML holds (by its `sigma:<id>` tag), pySigma
parses the rule and its condition; events are generated from the rule's own values (wildcards
filled, case changed, text added before and after, a character dropped) on every field it names,
and pySigma's parse is evaluated on each (Sigma's meaning: case-insensitive unless `|cased`,
wildcards crossing everything, `re` searched). Writes OUT_DIR/expected.json: [[ts_ns, rule name],
…] for every event and every converted rule that pySigma says matches it, and the events: for
`file_event` rules OUT_DIR/events.jsonl (for `open-forensics import`: successful creations, as a
`file_event` source reports them); for `process_creation` rules OUT_DIR/execs.json, a list of
{"ts_ns", "Image", "CommandLine", "ParentImage", "ParentCommandLine", "User",
"CurrentDirectory"} (JSON lines cannot carry a parent's arguments: the test stores them itself).
"""

import datetime
import itertools
import json
import re
import sys
from pathlib import Path

import yaml
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
)
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaCasedString,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

# The Sigma fields of each category's events.
FIELDS = {
    "file_event": ["TargetFilename", "Image"],
    "process_creation": [
        "Image", "CommandLine", "ParentImage", "ParentCommandLine", "User", "CurrentDirectory",
    ],
}
# Values per field a rule names; past two fields, fewer, so that a rule gets ~2,304 events.
PER_FIELD = 48
BASE_TS = 1_800_000_000_000_000_000


def rfc3339(ns):
    t = datetime.datetime.fromtimestamp(ns // 1_000_000_000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def sigma_regex(v: SigmaString) -> str:
    out = []
    for part in v.s:
        if part == SpecialChars.WILDCARD_MULTI:
            out.append(".*")
        elif part == SpecialChars.WILDCARD_SINGLE:
            out.append(".")
        else:
            out.append(re.escape(part))
    return "".join(out)


def matches(value, s):
    if s is None:
        return False
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for f, r in [
            (SigmaRegularExpressionFlag.IGNORECASE, re.I),
            (SigmaRegularExpressionFlag.MULTILINE, re.M),
            (SigmaRegularExpressionFlag.DOTALL, re.S),
        ]:
            if f in value.flags:
                flags |= r
        return re.search(value.regexp.original, s, flags) is not None
    if isinstance(value, SigmaString):
        flags = re.S if isinstance(value, SigmaCasedString) else re.S | re.I
        return re.fullmatch(sigma_regex(value), s, flags) is not None
    raise SystemExit(f"no oracle for value {value!r}")


def holds(cond, event):
    if isinstance(cond, ConditionAND):
        return all(holds(a, event) for a in cond.args)
    if isinstance(cond, ConditionOR):
        return any(holds(a, event) for a in cond.args)
    if isinstance(cond, ConditionNOT):
        return not holds(cond.args[0], event)
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        return matches(cond.value, event.get(cond.field))
    raise SystemExit(f"no oracle for condition {type(cond).__name__}")


def leaves(cond):
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        yield cond
    else:
        for a in getattr(cond, "args", []):
            yield from leaves(a)


def bases(value):
    """The value's own strings: wildcards filled (with nothing, or with text)."""
    if isinstance(value, SigmaRegularExpression):
        return [re.sub(r"[\\^$()|?*+\[\]{}]", "", value.regexp.original)]
    return [
        "".join(
            fill if p == SpecialChars.WILDCARD_MULTI
            else "q" if p == SpecialChars.WILDCARD_SINGLE
            else p
            for p in value.s
        )
        for fill in ["", "/x/Y"]
    ]


def near(base):
    """Strings near each base: what it matches and what it barely misses."""
    out = []
    for b in base:
        for v in [b, b.upper(), b.swapcase(), b[:-1]]:
            out += [v, "/pre" + v, v + ".post"]
    return out


def main():
    sigma_dir, converted, out_dir = map(Path, sys.argv[1:4])
    names = {}
    for r in yaml.safe_load(converted.read_text())["rules"]:
        for t in r["tags"]:
            if t.startswith("sigma:"):
                names[t[len("sigma:"):]] = r["name"]
    rules = []
    categories = set()
    for f in sorted(sigma_dir.rglob("*.yml")):
        rule = SigmaRule.from_yaml(f.read_text())
        if str(rule.id) in names:
            cond = rule.detection.parsed_condition[0].parsed
            rules.append((names[str(rule.id)], cond))
            categories.add(rule.logsource.category)
    if len(rules) != len(names):
        raise SystemExit(f"{len(names)} converted rules, {len(rules)} found under {sigma_dir}")
    if len(categories) != 1 or not categories <= FIELDS.keys():
        raise SystemExit(f"one category of {list(FIELDS)} at a time, not {categories}")
    category = categories.pop()
    fields = FIELDS[category]
    events = []
    for _, cond in rules:
        per_field = {f: ["/neutral/none"] for f in fields}
        # First, every value of a field in one string (for `|all`, and `all of` several
        # `contains`), then each value's own.
        for f in fields:
            joined = " ".join(bases(l.value)[0] for l in leaves(cond) if l.field == f)
            if joined:
                per_field[f] += near([joined])
        for leaf in leaves(cond):
            if leaf.field not in fields:
                raise SystemExit(f"field {leaf.field} has no event key here")
            per_field[leaf.field] += near(bases(leaf.value))
        named = sum(len(v) > 1 for v in per_field.values())
        cap = PER_FIELD if named <= 2 else max(4, round(PER_FIELD ** (2 / named)))
        lists = [list(dict.fromkeys(per_field[f]))[:cap] for f in fields]
        for combo in itertools.product(*lists):
            events.append(dict(zip(fields, combo)))
    expected = []
    for i, e in enumerate(events):
        e["ts_ns"] = BASE_TS + i * 1000
        for name, cond in rules:
            if holds(cond, e):
                expected.append([e["ts_ns"], name])
    if category == "process_creation":
        (out_dir / "execs.json").write_text(json.dumps(events))
    with open(out_dir / "events.jsonl", "w") as w:
        for e in events if category == "file_event" else []:
            ts = e["ts_ns"]
            w.write(json.dumps({
                "ts_ns": ts, "pid": 100, "tid": 100, "ppid": 1, "uid": 0, "gid": 0,
                "comm": "oracle", "syscall": "openat", "op": "open",
                "path": e["TargetFilename"], "path_source": "file", "path_truncated": False,
                "raw_path": e["TargetFilename"], "dirfd": -100,
                "flags": 0o1101, "mode": 0o644, "ret": 3,
                "exe": e["Image"], "argv": ["oracle"], "proc_start": rfc3339(ts - 1000),
                "ancestors": [],
            }) + "\n")
    (out_dir / "expected.json").write_text(json.dumps(expected))
    print(json.dumps({"rules": len(rules), "events": len(events), "alerts": len(expected)}))


if __name__ == "__main__":
    main()
