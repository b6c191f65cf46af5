#!/usr/bin/env python3
"""Checks that every command-line option and every config key is documented.

The lists come from the parsers' sources, so a new option or key is checked
without editing this script:
  options  src/app/main.c, cli.c, cmd_*.c: the names of 'struct option'
           tables ({"name", no_argument|required_argument|...}), options
           compared by hand (strcmp(argv[i], "--sign")) and the short options
           of getopt_long's option string ("c:L:")
  keys     src/app/config*.c: key_is(name, "key") (the config parser's way of
           naming a key; a new parser file must use it too), and the
           repeatable[] list of keys that may appear more than once
Each option must appear in 'umbra help' output (in 'umbra help CMD' when it
comes from cmd_CMD*.c and CMD is a command) and in umbra(1); each key in
docs/CONFIG.md (as `key` in the first column of a table whose first column
is "key") and in umbra.conf(5); a repeatable key's row says *repeatable*.
The man pages are rendered with 'man -l'.

  scripts/check_docs.py --src SRCDIR --umbra BIN --man1 umbra.1 --man5 umbra.conf.5
Exit 0 when all are documented, 1 listing what is missing, 2 on bad input."""
import argparse
import glob
import os
import re
import subprocess
import sys

OPT_TABLE = re.compile(r'\{\s*"([A-Za-z0-9][A-Za-z0-9-]*)"\s*,\s*(?:no|required|optional)_argument')
OPT_CMP = re.compile(r'strcmp\(\s*argv\[[^\]]+\]\s*,\s*"(--?[A-Za-z][A-Za-z0-9-]*)"\s*\)')
OPT_SHORT = re.compile(r'getopt_long\(\s*\w+\s*,\s*\w+\s*,\s*"([^"]*)"')
KEY_RE = re.compile(r'key_is\(\s*\w+\s*,\s*"([A-Za-z0-9][A-Za-z0-9-]*)"\s*\)')
REPEAT_RE = re.compile(r'repeatable\[\]\s*=\s*\{([^}]*)\}')


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", text, flags=re.S), flags=re.S)


def options(src):
    """{option: set of source files}."""
    out = {}
    files = [os.path.join(src, "src/app", f) for f in ("main.c", "cli.c")]
    files += sorted(glob.glob(os.path.join(src, "src/app/cmd_*.c")))
    for path in files:
        if not os.path.exists(path):
            continue
        text = strip_comments(open(path, encoding="utf-8").read())
        found = ["--" + n for n in OPT_TABLE.findall(text)] + OPT_CMP.findall(text)
        for spec in OPT_SHORT.findall(text):
            found += ["-" + ch for ch in spec if ch.isalnum()]
        for o in found:
            if o == "--":
                continue
            out.setdefault(o, set()).add(os.path.basename(path))
    return out


def keys(src):
    """({key: set of source files}, set of repeatable keys)."""
    out, rep = {}, set()
    for path in sorted(glob.glob(os.path.join(src, "src/app/config*.c"))):
        text = strip_comments(open(path, encoding="utf-8").read())
        for k in KEY_RE.findall(text):
            out.setdefault(k, set()).add(os.path.basename(path))
        for lst in REPEAT_RE.findall(text):
            for k in re.findall(r'"([^"]+)"', lst):
                rep.add(k)
                out.setdefault(k, set()).add(os.path.basename(path))
    return out, rep


def run(cmd):
    env = dict(os.environ, LC_ALL="C", MANWIDTH="250", ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.stderr.write("check_docs: %s failed (%d): %s\n" % (" ".join(cmd), r.returncode, r.stderr))
        sys.exit(2)
    return r.stdout


def render(page):
    """The page as plain text, as man shows it (overstrikes removed)."""
    text = run(["man", "-l", page])
    return re.sub(r".\x08", "", text)


def has_word(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def config_md_keys(path):
    """Keys of CONFIG.md: {`name` in the first cell of a row of a table whose
    header's first cell is 'key': whether a row of it says *repeatable*}."""
    found, in_keys = {}, False
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if not s.startswith("|"):
            in_keys = False
            continue
        first = s.strip("|").split("|")[0].strip()
        if first.lower() == "key":
            in_keys = True
            continue
        if in_keys:
            for k in re.findall(r"`([^`]+)`", first):
                found[k] = found.get(k, False) or "*repeatable*" in s
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--umbra", required=True)
    ap.add_argument("--man1", required=True)
    ap.add_argument("--man5", required=True)
    ap.add_argument("--config-md", help="default SRC/docs/CONFIG.md")
    a = ap.parse_args()
    md = a.config_md or os.path.join(a.src, "docs/CONFIG.md")

    overview = run([a.umbra, "help"])
    cmds = re.findall(r"^  (\S+)\s", overview.split("commands:", 1)[-1], flags=re.M)
    helps = {c: run([a.umbra, "help", c]) for c in cmds}
    all_help = overview + "\n".join(helps.values())
    man1, man5 = render(a.man1), render(a.man5)
    md_keys = config_md_keys(md)

    opts, (ks, rep) = options(a.src), keys(a.src)
    if len(opts) < 5 or len(ks) < 5:
        sys.stderr.write("check_docs: found only %d options and %d keys: are the parsers' "
                         "patterns still what this script reads?\n" % (len(opts), len(ks)))
        return 2
    missing = []
    for o in sorted(opts):
        where = sorted(opts[o])
        texts = [("umbra help", all_help)]
        for f in where:
            m = re.match(r"cmd_([a-z]+)", f)
            if m and m.group(1) in helps:
                texts = [("umbra help " + m.group(1), helps[m.group(1)])]
        for name, t in texts + [("umbra(1)", man1)]:
            if not has_word(t, o):
                missing.append("option %s (%s) is not in %s" % (o, ", ".join(where), name))
    for k in sorted(ks):
        where = ", ".join(sorted(ks[k]))
        if k not in md_keys:
            missing.append("key %s (%s) is not in a key table of %s" % (k, where, md))
        elif k in rep and not md_keys[k]:
            missing.append("key %s (%s) is repeatable but its row in %s does not say *repeatable*"
                           % (k, where, md))
        if not has_word(man5, k):
            missing.append("key %s (%s) is not in umbra.conf(5)" % (k, where))
    for m in missing:
        print("UNDOCUMENTED " + m)
    print("check_docs: %d options, %d keys, %d missing" % (len(opts), len(ks), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
