#!/usr/bin/env python3
"""check_docs.py: the documents stand alone and say what the code has.

- Every relative link of README.md and docs/*.md points at a file of the
  repository, and every #anchor at a heading of that file (GitHub's way of
  making anchors from headings).
- No file git knows names a path outside the repository (../shared/,
  /work/).
- Every [pooler] key of pooler/config.c is documented in docs/, in the man
  page apiscale-pooler.ini(5) and in the sample configuration; every admin
  command admin.c answers is in docs/pooler.md and apiscale-pooler(1); every
  command-line option of main.c is in apiscale-pooler(1).
- The README stays a front page: at most 300 lines, and its two commands
  are make demo and make test.

Prints one line per problem and "N passed, M failed"; exits 1 on any.
"""

import re
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
problems = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        problems.append(what)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    found, fence = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        m = re.match(r"^#{1,6} (.*)", line)
        if m and not fence:
            found.add(slug(m.group(1)))
    return found


def markdown_files():
    return [TOP / "README.md"] + sorted((TOP / "docs").glob("*.md"))


def check_links():
    for md in markdown_files():
        text = md.read_text()
        # links outside code spans and blocks
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            where = f"{md.relative_to(TOP)}: link {target}"
            file_part, _, anchor = target.partition("#")
            dest = (md.parent / file_part).resolve() if file_part else md
            check(dest.exists() and str(dest).startswith(str(TOP)),
                  f"{where}: no such file")
            if anchor and dest.exists() and dest.suffix == ".md":
                check(anchor in anchors(dest), f"{where}: no heading with that anchor")


def check_no_outside_paths():
    files = subprocess.run(["git", "-C", str(TOP), "ls-files"], capture_output=True,
                           text=True).stdout.split()
    if not files:  # not a git checkout: the documents at least
        files = [str(p.relative_to(TOP)) for p in markdown_files()]
    me = str(Path(__file__).resolve().relative_to(TOP))
    for f in files:
        path = TOP / f
        if f == me or not path.is_file() or path.suffix in (".png",):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for bad in ("../shared/", "/work/"):
            check(bad not in text, f"{f}: names a path outside the repository ({bad})")


def config_keys():
    src = (TOP / "pooler" / "config.c").read_text()
    table = src[src.index("static const KeyDef keys[]"):]
    table = table[:table.index("};")]
    return re.findall(r'\{"([a-z_]+)", KEY_', table)


def check_keys():
    docs = "".join(p.read_text() for p in (TOP / "docs").glob("*.md"))
    man5 = (TOP / "pooler" / "man" / "apiscale-pooler.ini.5").read_text()
    sample = (TOP / "pooler" / "apiscale-pooler.ini").read_text()
    keys = config_keys()
    check(len(keys) > 30, f"found only {len(keys)} keys in pooler/config.c")
    for k in keys:
        check(f"`{k}`" in docs, f"[pooler] key {k} is not in docs/")
        check(f"\n.B {k}\n" in man5 or re.search(rf"\.BR? .*\b{k}\b", man5) is not None,
              f"[pooler] key {k} is not in pooler/man/apiscale-pooler.ini.5")
        check(re.search(rf"^{k} =", sample, re.M) is not None,
              f"[pooler] key {k} is not in pooler/apiscale-pooler.ini")


def check_commands():
    admin = (TOP / "pooler" / "admin.c").read_text()
    pooler_md = (TOP / "docs" / "pooler.md").read_text()
    man1 = (TOP / "pooler" / "man" / "apiscale-pooler.1").read_text()
    commands = re.findall(r'strcmp\(cmd, "([A-Z_ ]+)"\) == 0', admin)
    check(len(commands) > 10, f"found only {len(commands)} admin commands in admin.c")
    for c in commands:
        check(f"`{c}" in pooler_md, f"admin command {c} is not in docs/pooler.md")
        word = c.split()[-1]
        check(word in man1, f"admin command {c} is not in apiscale-pooler(1)")
    main = (TOP / "pooler" / "main.c").read_text()
    for opt in re.findall(r'\{"([a-z-]+)", (?:no|required)_argument', main):
        check(opt.replace("-", r"\-") in man1, f"option --{opt} is not in apiscale-pooler(1)")


def check_readme():
    text = (TOP / "README.md").read_text()
    n = len(text.splitlines())
    check(n <= 300, f"README.md has {n} lines (a front page: at most 300)")
    m = re.search(r"## Two commands.*?```sh\n(.*?)```", text, re.S)
    cmds = [line.split("#")[0].strip() for line in m.group(1).splitlines()] if m else []
    check(cmds == ["make demo", "make test"], f"README's two commands are {cmds}")


for f in (check_links, check_no_outside_paths, check_keys, check_commands, check_readme):
    f()
for p in problems:
    print("check_docs:", p)
print(f"{passed} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
