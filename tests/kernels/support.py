#!/usr/bin/env python3
"""The "Supported kernels" table, from what the kernel matrix proved: for each kernel whose serial
log is given (the runner's target/kernels/logs/RELEASE.log), what `--version` said it captures and
why not, and whether that kernel passed the matrix. Markdown on stdout; docs/kernels.md holds the
table of a dated run.

usage: tests/kernels/support.py VERDICTS LOG...   (VERDICTS: check.py's output)
"""

import re
import sys

CAP = re.compile(r"^  (?P<name>.+?): (?P<state>captured|not captured)(?: \((?P<why>.*)\))?\s*$")


def version_section(text):
    m = re.search(r"@@of-kernels begin version\n(.*?)@@of-kernels end version", text, re.S)
    return m.group(1).splitlines() if m else []


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    verdicts = {}
    for line in open(argv[1], encoding="utf-8", errors="replace"):
        # check.py's verdicts: "PASS kernel RELEASE (…)", "FAIL kernel RELEASE: …".
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("PASS", "FAIL") and parts[1] == "kernel":
            verdicts[parts[2].rstrip(":")] = parts[0]
    kernels, caps = [], []
    for log in argv[2:]:
        text = open(log, encoding="utf-8", errors="replace").read()
        m = re.search(r"@@of-kernels uname (\S+)", text)
        if not m:
            continue
        release = m.group(1)
        states = {}
        for line in version_section(text):
            c = CAP.match(line)
            if c:
                if c["name"] not in caps:
                    caps.append(c["name"])
                states[c["name"]] = "yes" if c["state"] == "captured" else "no: " + re.sub(
                    r"^kernel \S+ ", "", c["why"] or "")
        kernels.append((release, verdicts.get(release, "?"), states))
    kernels.sort(key=lambda k: [int(x) if x.isdigit() else x for x in re.split(r"[.-]", k[0])[:2]])
    print("| capability | " + " | ".join(k[0] for k in kernels) + " |")
    print("|---|" + "---|" * len(kernels))
    print("| the matrix | " + " | ".join(k[1] for k in kernels) + " |")
    for cap in caps:
        cells = [k[2].get(cap, "?").replace("|", "\\|") for k in kernels]
        print(f"| {cap} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv)
