#!/usr/bin/env bash
# make-venv.sh DIR LOCKFILE: create a virtual environment from a pinned lock file
# and install mindzoo into it (editable). Re-running only installs what changed.
set -euo pipefail
dir=$1 lock=$2
python=${PYTHON:-python3}
if [ ! -x "$dir/bin/python" ]; then
  echo "==> creating $dir"
  "$python" -m venv "$dir"
fi
echo "==> installing $lock into $dir (the runtime set is several GB: MindSpore + torch; minutes when cold)"
# Show one line per package as progress; pipefail keeps pip's own failure.
"$dir/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$lock" \
  | { grep -E '^(Collecting|Successfully|ERROR)' || true; }
"$dir/bin/python" -m pip install --disable-pip-version-check -q --no-deps -e .
"$dir/bin/python" -m pip check >/dev/null || { "$dir/bin/python" -m pip check; exit 1; }
