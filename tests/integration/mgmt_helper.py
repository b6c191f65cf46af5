#!/usr/bin/env python3
"""Helpers of server_mgmt.sh.

  mgmt_helper.py metric URL NAME [LABEL=VALUE...]
      GET URL, check the whole answer is valid Prometheus text exposition
      (version 0.0.4: Content-Type, every line well-formed, one HELP and one
      TYPE per family before its samples, histogram buckets cumulative and
      ending in +Inf, parsed again by prometheus_client's
      text_string_to_metric_families), print the value of sample NAME with
      those labels (exit 1 when missing or invalid, saying why).
  mgmt_helper.py client-field JSON NAME FIELD   a field of a client in the
      answer of 'umbra server clients --json' (sessions: their count,
      session-id: the first session's id)
  mgmt_helper.py last-down EVENTS               the reason of the last
      session_down event
"""
import json
import math
import re
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s)(?:,%s)*\})? (\S+)$" % (NAME, LABEL, LABEL))
VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)


def strict(text):
    """Checks text line by line; returns {family: type}."""
    if not text.endswith("\n"):
        fail("exposition does not end with a newline")
    families, helped, sampled = {}, set(), set()
    current = None
    for no, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            if not re.fullmatch(NAME, name) or name in helped:
                fail("line %d: bad or repeated HELP: %r" % (no, line))
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in TYPES or parts[2] in families:
                fail("line %d: bad or repeated TYPE: %r" % (no, line))
            if parts[2] in sampled:
                fail("line %d: TYPE after samples of %s" % (no, parts[2]))
            families[parts[2]] = parts[3]
            current = parts[2]
            continue
        if line.startswith("#") or not line:
            fail("line %d: unexpected line %r" % (no, line))
        m = SAMPLE.match(line)
        if not m or not VALUE.match(m.group(3)):
            fail("line %d: malformed sample %r" % (no, line))
        name = m.group(1)
        fam = current
        if fam is None or not (
            name == fam
            or (families[fam] == "histogram" and name in (fam + "_bucket", fam + "_sum", fam + "_count"))
        ):
            fail("line %d: sample %s outside its family (%s)" % (no, name, fam))
        if families[fam] == "counter" and not name.endswith("_total"):
            fail("line %d: counter %s does not end in _total" % (no, name))
        sampled.add(fam)
    return families


def check_histograms(fams):
    for f in fams:
        if f.type != "histogram":
            continue
        last, les = -1, []
        for s in f.samples:
            if s.name.endswith("_bucket"):
                if s.value < last:
                    fail("%s: buckets not cumulative" % f.name)
                last = s.value
                les.append(s.labels["le"])
        if not les or les[-1] != "+Inf":
            fail("%s: no +Inf bucket" % f.name)
        count = [s.value for s in f.samples if s.name.endswith("_count")]
        if count != [last]:
            fail("%s: _count %s is not the +Inf bucket %s" % (f.name, count, last))


def metric(url, name, labels):
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        if r.status != 200 or not ctype.startswith("text/plain") or "version=0.0.4" not in ctype:
            fail("status %s, Content-Type %r" % (r.status, ctype))
        text = r.read().decode("utf-8")
    strict(text)
    fams = list(text_string_to_metric_families(text))
    check_histograms(fams)
    want = dict(kv.split("=", 1) for kv in labels)
    for f in fams:
        for s in f.samples:
            if s.name == name and s.labels == want:
                if math.isnan(s.value):
                    fail("%s is NaN" % name)
                print(int(s.value) if s.value == int(s.value) else s.value)
                return
    fail("no sample %s%s" % (name, want))


def client_field(path, name, field):
    with open(path) as f:
        ans = json.load(f)
    for c in ans["clients"]:
        if c["name"] == name:
            if field == "sessions":
                print(len(c["sessions"]))
            elif field == "session-id":
                print(c["sessions"][0]["id"] if c["sessions"] else "")
            else:
                print(c[field])
            return
    print("absent")


def last_down(path):
    reason = ""
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "session_down":
                reason = e.get("reason", "")
    print(reason)


def main(a):
    if a[0] == "metric":
        metric(a[1], a[2], a[3:])
    elif a[0] == "client-field":
        client_field(a[1], a[2], a[3])
    elif a[0] == "last-down":
        last_down(a[1])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
