"""`make audit`: pip-audit of requirements.lock against PyPI's vulnerability data, never silent.

pip-audit skips, with exit status 0, every package it could not look up (service unreachable,
or a proxy that does not serve PyPI's per-release JSON); a green audit that checked nothing is
worse than none. This wrapper runs pip-audit (``--vulnerability-service pypi``: OSV may be
unreachable from CI), reads its JSON report and exits:

* 0: every locked package was checked, no vulnerability outside requirements.audit-ignore;
* 1: vulnerabilities found (each printed with the fixed versions);
* 3: the audit is incomplete: packages could not be checked (named), or pip-audit failed.

The ignore list, requirements.audit-ignore, holds one vulnerability id a line with a comment
saying why it does not apply to framewatch. Usage: ``python tools/audit.py [LOCKFILE]``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INCOMPLETE = 3


def ignored(path: Path) -> list[str]:
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            ids.append(entry)
    return ids


def main() -> int:
    lock = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "requirements.lock"
    skip = ignored(REPO / "requirements.audit-ignore")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        cmd = [sys.executable, "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip",
               "--vulnerability-service", "pypi", "--progress-spinner", "off",
               "--format", "json", "--output", str(report),
               *(a for i in skip for a in ("--ignore-vuln", i))]  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if not report.exists():
            print(run.stderr[-3000:], file=sys.stderr)
            print(f"audit: INCOMPLETE: pip-audit failed (exit {run.returncode}) before it "
                  "wrote a report; nothing was checked", file=sys.stderr)  # fmt: skip
            return INCOMPLETE
        data = json.loads(report.read_text())
    deps = data.get("dependencies", [])
    unchecked = [d for d in deps if d.get("skip_reason")]
    vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
    checked = len(deps) - len(unchecked)
    print(f"audit: {len(deps)} locked packages, {checked} checked against PyPI, "
          f"{len(unchecked)} not checked, {len(vulns)} vulnerabilities "
          f"({len(skip)} ignored by requirements.audit-ignore)")  # fmt: skip
    for d, v in vulns:
        fixes = ", ".join(v.get("fix_versions") or []) or "no fixed release"
        print(f"  VULNERABLE {d['name']} {d['version']}: {v['id']} "
              f"(aliases {', '.join(v.get('aliases') or []) or '-'}); fixed in {fixes}")  # fmt: skip
    if vulns:
        print("audit: upgrade in pyproject.toml and regenerate requirements.lock, or add the id to "
              "requirements.audit-ignore with the reason it does not apply", file=sys.stderr)  # fmt: skip
        return 1
    if unchecked:
        print(f"audit: INCOMPLETE: {len(unchecked)} of {len(deps)} packages could not be "
              "checked, so this is NOT a clean audit:", file=sys.stderr)  # fmt: skip
        for d in unchecked[:10]:
            print(f"  {d['name']}: {d['skip_reason']}", file=sys.stderr)
        if len(unchecked) > 10:
            print(f"  ... and {len(unchecked) - 10} more", file=sys.stderr)
        print("audit: is https://pypi.org/pypi/NAME/VERSION/json reachable from here?",
              file=sys.stderr)  # fmt: skip
        return INCOMPLETE
    print("audit: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
