"""Summarizes a tempest subunit v2 stream (from `stestr last --subunit`) as text:
pass/fail/skip per package, each failure with the last line of its traceback, and the
skip reasons with their counts. Prints it and writes it to --out.

Usage: summarize.py RESULTS.subunit [--regex RE] [--seconds N] [--out FILE]
"""

import argparse
import collections
import re
import sys

import subunit
import testtools

STATUS = {"success": "pass", "xfail": "pass", "fail": "fail", "uxsuccess": "fail",
          "skip": "skip"}


def package(test_id):
    """tempest.api.image.v2.admin.test_images.X.test_y -> image.v2.admin"""
    m = re.search(r"\((tempest\.[^)]*)\)", test_id)  # "setUpClass (tempest....Class)"
    if m:
        test_id = m.group(1)
    parts = test_id.split(".")
    if parts[:2] == ["tempest", "api"]:
        parts = parts[2:]
    out = []
    for p in parts:
        if p.startswith("test_") or p[:1].isupper():
            break
        out.append(p)
    return ".".join(out) or test_id


def detail_text(details, key):
    d = details.get(key)
    if d is None:
        return ""
    try:
        return d.as_text()
    except Exception:  # noqa: BLE001 - best effort on odd content types
        return ""


def short_failure(details):
    tb = detail_text(details, "traceback").strip().splitlines()
    lines = [ln for ln in tb if ln.strip()]
    return lines[-1].strip()[:300] if lines else "(no traceback)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stream")
    ap.add_argument("--regex", default="")
    ap.add_argument("--seconds", default="?")
    ap.add_argument("--out")
    a = ap.parse_args()

    tests = {}

    def on_test(t):
        if t["status"] in ("exists", "inprogress"):
            return
        tests[t["id"]] = t

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    with open(a.stream, "rb") as f:
        subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout").run(result)
    result.stopTestRun()

    counts = collections.defaultdict(collections.Counter)
    failures, skips = [], collections.Counter()
    for tid, t in sorted(tests.items()):
        st = STATUS.get(t["status"], t["status"])
        counts[package(tid)][st] += 1
        if st == "fail":
            failures.append((tid, short_failure(t["details"])))
        elif st == "skip":
            reason = detail_text(t["details"], "reason").strip() or "(no reason)"
            skips[reason[:200]] += 1

    out = []
    out.append(f"tempest run: {len(tests)} tests in {a.seconds} s")
    if a.regex:
        out.append(f"selection: {a.regex}")
    out.append("")
    out.append(f"{'package':<28} {'pass':>5} {'fail':>5} {'skip':>5}")
    total = collections.Counter()
    for pkg in sorted(counts):
        c = counts[pkg]
        total.update(c)
        out.append(f"{pkg:<28} {c['pass']:>5} {c['fail']:>5} {c['skip']:>5}")
    out.append(f"{'total':<28} {total['pass']:>5} {total['fail']:>5} {total['skip']:>5}")
    out.append("")
    out.append(f"failures ({len(failures)}):")
    for tid, why in failures:
        out.append(f"  {tid}")
        out.append(f"      {why}")
    out.append("")
    out.append(f"skip reasons ({sum(skips.values())} skipped):")
    for reason, n in skips.most_common():
        out.append(f"  {n:>4}  {reason}")
    out.append("")
    out.append(f"{total['pass']} passed, {total['fail']} failed, {total['skip']} skipped")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
