"""junit-summary.py LABEL DIR: one `LABEL: N passed, N failed, N skipped` line from the JUnit
reports (*.xml) that pytest runs wrote into DIR (scripts/test.sh, scripts/test-e2e.sh)."""
import pathlib
import sys
import xml.etree.ElementTree as ET

label, folder = sys.argv[1], pathlib.Path(sys.argv[2])
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for xml in sorted(folder.glob("*.xml")):
    for suite in ET.parse(xml).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{label}: {passed} passed, {failed} failed, {totals['skipped']} skipped")
