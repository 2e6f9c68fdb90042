#!/usr/bin/env bash
# lint.sh: the repository's static checks; integration/run-tests.sh runs it before the tests.
#   - shellcheck on every shell script: `git ls-files '*.sh'`, .ci/run, and the files in contrib/ without an
#     extension whose first line is a sh or bash shebang;
#   - the C# style of .editorconfig: `dotnet format VirtBackup.Plugin.sln --verify-no-changes` (contrib/format.sh
#     fixes what it reports) and no CancellationToken named `ct` (no naming rule can ask for `cancellationToken`).
# Prints what fails and ends with "lint: ok" or "lint: failed (...)"; exits 1 when a check fails.
#   integration/lint.sh [--no-restore]   (--no-restore: the solution is restored already, as after a build)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

# The C# checks are on once contrib/format.sh's bulk reformat is on main: flip to 1 in that same commit.
check_csharp=1

failed=()

command -v shellcheck >/dev/null || { echo "lint.sh: shellcheck is missing (apt-get install shellcheck; integration/lab/install.sh installs it)" >&2; exit 1; }
scripts=()
while IFS= read -r file; do scripts+=("$file"); done < <(
  git ls-files '*.sh'
  echo .ci/run
  git ls-files contrib | grep -v '/[^/]*\.[^/]*$' | while IFS= read -r file; do
    head -n 1 "$file" | grep -qE '^#!(/usr/bin/env |/bin/|/usr/bin/)(ba)?sh\b' && echo "$file"
  done
)
if ! shellcheck "${scripts[@]}"; then
  failed+=("shellcheck")
fi
echo "lint.sh: shellcheck checked ${#scripts[@]} scripts" >&2

if ((check_csharp)); then
  if git grep -nE 'CancellationToken ct\b' -- '*.cs'; then
    echo "lint.sh: name these CancellationToken parameters cancellationToken (contrib/format.sh renames them)" >&2
    failed+=("ct")
  fi
  if ! dotnet format VirtBackup.Plugin.sln "$@" --verify-no-changes; then
    echo "lint.sh: the C# code is not in the style of .editorconfig: run contrib/format.sh (or dotnet format VirtBackup.Plugin.sln)" >&2
    failed+=("dotnet format")
  fi
fi

if ((${#failed[@]})); then
  echo "lint: failed (${failed[*]})"
  exit 1
fi
echo "lint: ok"
