#!/usr/bin/env bash
# Run the test suite in both environments (they cannot merge: protobuf pins),
# then print one combined summary line. Extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export GLOG_v=3 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 ONEDNN_MAX_CPU_ISA=AVX2
reports=$(mktemp -d)
status=0
for env in runtime control; do
  venv=.venv; [ "$env" = control ] && venv=.venv-control
  echo "==> tests in the $env environment ($venv)"
  "$venv/bin/python" -m pytest -p no:cacheprovider --durations=15 --junitxml="$reports/$env.xml" "$@" tests || status=1
done
python3 - "$reports" <<'PY'
import sys, xml.etree.ElementTree as ET, pathlib
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for xml in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(xml).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"mindzoo: {passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
rm -rf "$reports"
exit $status
