#!/usr/bin/env bash
# Brings every C# file to the one style of .editorconfig, so that integration/lint.sh's
# `dotnet format VirtBackup.Plugin.sln --verify-no-changes` passes:
#   1. contrib/format/StyleRenames renames what `dotnet format` has no fix for (naming rule IDE1006): private
#      fields to _camelCase, CancellationToken parameters and locals named `ct` to `cancellationToken`; with
#      Roslyn's renamer, so every reference follows (named arguments and <paramref>s too);
#   2. `dotnet format` fixes whitespace and the style rules (braces, no `this.`, var, ...); a fix can uncover
#      another (a renamed field's `this.` becomes removable) or be skipped in a crowded file, so it runs again
#      until --verify-no-changes passes (at most 3 times);
#   3. the solution builds (warnings are errors).
# Run it from a clean work tree and commit the result as one commit of its own. Takes minutes: each dotnet
# format pass loads and analyses the whole solution.
#   contrib/format.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
sln=VirtBackup.Plugin.sln

dotnet restore "$sln" -v q
dotnet run --project contrib/format/StyleRenames -c Release -- "$sln"

for pass in 1 2 3; do
  echo "format.sh: dotnet format, pass $pass" >&2
  dotnet format "$sln" --no-restore
  if dotnet format "$sln" --no-restore --verify-no-changes; then
    dotnet build "$sln" -c Release -nologo -clp:ErrorsOnly
    echo "format.sh: done; review and commit the changes (git diff --stat)" >&2
    exit 0
  fi
done
echo "format.sh: dotnet format still changes files after 3 passes: see its messages above" >&2
exit 1
