#!/usr/bin/env python3
"""Tests docs/editors/gray.tmLanguage.json, the TextMate grammar for .gray files.

    tests/textmate_test.py SOURCE_DIR

A small TextMate tokenizer (match, begin/end, captures, include; the subset the grammar
uses, with regular expressions that Python and Oniguruma read alike) runs the grammar over
every example we have: the bundled pipelines and stdlib, the lint and fmt golden files, and the
examples in the docs. Every token must get a scope of its own (no text left as bare
source.gray), nothing may be scoped invalid, every region (string, interpolation) must be
closed at the end of the file, and a few tokens must get the scope they are known to have.
"""
import json
import os
import re
import sys

ROOT_SCOPE = "source.gray"


class Grammar:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.g = json.load(f)
        self.repo = self.g.get("repository", {})
        self.compiled = {}
        self._check_includes(self.g)

    def _check_includes(self, node):
        if isinstance(node, dict):
            inc = node.get("include")
            if inc and inc.startswith("#") and inc[1:] not in self.repo:
                raise SystemExit(f"grammar: include '{inc}' names no repository entry")
            for v in node.values():
                self._check_includes(v)
        elif isinstance(node, list):
            for v in node:
                self._check_includes(v)

    def regex(self, src):
        if src not in self.compiled:
            try:
                self.compiled[src] = re.compile(src)
            except re.error as e:
                raise SystemExit(f"grammar: regular expression {src!r} does not compile: {e}")
        return self.compiled[src]

    def flatten(self, patterns):
        """The rules a list of patterns stands for, includes resolved, in order."""
        out = []
        for p in patterns:
            if "include" in p:
                inc = p["include"]
                if inc == "$self":
                    out += self.flatten(self.g["patterns"])
                else:
                    entry = self.repo[inc[1:]]
                    out += self.flatten(entry["patterns"]) if "patterns" in entry and "match" not in entry and "begin" not in entry else [entry]
            else:
                out.append(p)
        return out


def tokenize(grammar, text):
    """Scopes per character, and the stack of regions still open at the end."""
    scopes = [None] * len(text)
    stack = []  # (rule, scope list inside it)
    base = [ROOT_SCOPE]
    offset = 0
    for line in text.splitlines(keepends=True):
        pos = 0
        while pos < len(line):
            rule, inner = (stack[-1] if stack else (None, base))
            patterns = grammar.flatten(rule["patterns"] if rule and "patterns" in rule else ([] if rule else grammar.g["patterns"]))
            best = None  # (start, order, kind, rule, match)
            if rule:
                m = grammar.regex(rule["end"]).search(line, pos)
                if m:
                    best = (m.start(), -1, "end", rule, m)
            for i, p in enumerate(patterns):
                m = grammar.regex(p.get("match") or p["begin"]).search(line, pos)
                if m and (best is None or (m.start(), i) < (best[0], best[1])):
                    best = (m.start(), i, "match" if "match" in p else "begin", p, m)
            if best is None:
                for k in range(pos, len(line)):
                    scopes[offset + k] = list(inner)
                break
            start, _, kind, p, m = best
            for k in range(pos, start):
                scopes[offset + k] = list(inner)
            if kind == "end":
                outer = inner
                for k in range(m.start(), m.end()):
                    scopes[offset + k] = list(outer) + captures_at(p.get("endCaptures", p.get("captures", {})), m, k)
                stack.pop()
            elif kind == "match":
                here = inner + ([p["name"]] if "name" in p else [])
                for k in range(m.start(), m.end()):
                    scopes[offset + k] = list(here) + captures_at(p.get("captures", {}), m, k)
            else:
                here = inner + ([p["name"]] if "name" in p else [])
                for k in range(m.start(), m.end()):
                    scopes[offset + k] = list(here) + captures_at(p.get("beginCaptures", p.get("captures", {})), m, k)
                stack.append((p, here + ([p["contentName"]] if "contentName" in p else [])))
            if m.end() == pos and kind != "begin":
                # An empty match: keep going, one character further.
                if scopes[offset + pos] is None:
                    scopes[offset + pos] = list(inner)
                pos += 1
            else:
                pos = max(m.end(), pos if kind == "begin" else pos + 1)
        offset += len(line)
    return scopes, stack


def captures_at(caps, m, k):
    out = []
    for group, spec in sorted(caps.items(), key=lambda kv: int(kv[0])):
        g = int(group)
        if g <= (m.re.groups or 0) and m.start(g) != -1 and m.start(g) <= k < m.end(g) and "name" in spec:
            out.append(spec["name"])
    return out


def gray_blocks(md):
    return re.findall(r"^```gray\n(.*?)^```", md, re.S | re.M)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    grammar = Grammar(os.path.join(src, "docs/editors/gray.tmLanguage.json"))
    if grammar.g.get("scopeName") != ROOT_SCOPE or "gray" not in grammar.g.get("fileTypes", []):
        raise SystemExit("grammar: scopeName must be source.gray and fileTypes must hold 'gray'")
    for src_re in [r for r in grammar.compiled]:
        pass

    inputs = []
    for folder in ["pipelines", "stdlib", "tests/golden/lint", "tests/golden/fmt"]:
        for dirpath, _, files in os.walk(os.path.join(src, folder)):
            for f in sorted(files):
                if f.endswith((".gray", ".fmt")):
                    path = os.path.join(dirpath, f)
                    with open(path, encoding="utf-8") as fh:
                        inputs.append((os.path.relpath(path, src), fh.read()))
    for dirpath, _, files in os.walk(os.path.join(src, "docs")):
        for f in sorted(files):
            if f.endswith(".md"):
                path = os.path.join(dirpath, f)
                with open(path, encoding="utf-8") as fh:
                    for i, block in enumerate(gray_blocks(fh.read())):
                        inputs.append((f"{os.path.relpath(path, src)} example {i + 1}", block))

    failures = []
    tokens = 0
    for name, text in inputs:
        scopes, stack = tokenize(grammar, text)
        if stack:
            failures.append(f"{name}: a region is still open at the end of the file: {stack[-1][0].get('name')}")
        line = 1
        col = 1
        for k, ch in enumerate(text):
            s = scopes[k] or [ROOT_SCOPE]
            if not ch.isspace():
                tokens += 1
                if s == [ROOT_SCOPE]:
                    failures.append(f"{name}:{line}:{col}: {ch!r} has no scope of its own")
                if any(x.startswith("invalid.") for x in s):
                    failures.append(f"{name}:{line}:{col}: {ch!r} is scoped {s[-1]}")
            if ch == "\n":
                line += 1
                col = 1
            else:
                col += 1
        if len(failures) > 40:
            break

    # Known tokens get known scopes.
    sample = ('pipeline "p" {\n'
              '  param version\n'
              '  gateway edge = haproxy { socket: "/run/x # not a comment", backend: "b", stable: ["a"], canary: ["b"] }\n'
              '  ramp traffic {\n'
              '    via edge\n'
              '    steps 5% -> 20%   # a comment\n'
              '    hold 10m\n'
              '    guard "e" error_rate(version) < 1% for 2m else rollback\n'
              '  }\n'
              '  deploy app {\n'
              '    run "deploy.sh ${version} \\"q\\"" timeout 5m\n'
              '    undo all\n'
              '  }\n'
              '}\n')
    scopes, _ = tokenize(grammar, sample)

    def scope_of(needle, nth=0, offset=0):
        i = -1
        for _ in range(nth + 1):
            i = sample.index(needle, i + 1)
        return scopes[i + offset]

    expectations = [
        ("pipeline", 0, 0, "storage.type.pipeline.gray"),
        ('"p"', 0, 1, "string.quoted.double.gray"),
        ("version", 0, 0, "variable.other.declaration.gray"),
        ("edge", 0, 0, "variable.other.declaration.gray"),
        ("haproxy", 0, 0, "support.type.driver.gray"),
        ("socket", 0, 0, "entity.other.attribute-name.gray"),
        ("# not a comment", 0, 0, "string.quoted.double.gray"),
        ("traffic", 0, 0, "entity.name.section.stage.gray"),
        ("ramp", 0, 0, "keyword.control.stage.gray"),
        ("via", 0, 0, "keyword.other.setting.gray"),
        ("5%", 0, 0, "constant.numeric.gray"),
        ("5%", 0, 1, "keyword.other.unit.gray"),
        ("->", 0, 0, "keyword.operator.arrow.gray"),
        ("# a comment", 0, 2, "comment.line.number-sign.gray"),
        ("10m", 0, 2, "keyword.other.unit.gray"),
        ("error_rate", 0, 0, "entity.name.function.gray"),
        ("<", 0, 0, "keyword.operator.comparison.gray"),
        ("for", 0, 0, "keyword.other.clause.gray"),
        ("rollback", 0, 0, "keyword.control.stage.gray"),
        ("${", 0, 0, "punctuation.section.interpolation.begin.gray"),
        ("${version}", 0, 3, "variable.other.gray"),
        ('\\"q', 0, 0, "constant.character.escape.gray"),
        ("all", 0, 0, "keyword.other.clause.gray"),
    ]
    for needle, nth, off, want in expectations:
        got = scope_of(needle, nth, off)
        if want not in got:
            failures.append(f"sample: {needle!r} (+{off}) should be {want}, is {got}")

    if failures:
        print("\n".join(failures[:60]))
        print(f"FAILED: {len(failures)} problems")
        return 1
    print(f"ok: {len(inputs)} inputs, {tokens} characters of tokens, every one scoped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
