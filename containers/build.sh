#!/usr/bin/env bash
# Builds the Apptainer images from the pinned recipes beside this script.
#   containers/build.sh                  agent, dmlab and minecraft
#   containers/build.sh agent dmlab      only these
# Each becomes containers/NAME.sif (replaced if there); needs apptainer, network access, and root or
# user namespaces for --fakeroot. Prints each image's SHA-256, the digest training.train records.
set -euo pipefail

# The recipes copy requirements.txt from the repository root: build from there.
cd "$(dirname "$0")/.."
names=("$@")
((${#names[@]})) || names=(agent dmlab minecraft)
command -v apptainer >/dev/null || {
  echo "build.sh: apptainer is not installed (https://apptainer.org/docs/admin/main/installation.html)" >&2
  exit 1
}
# Root builds as it is; everyone else through a user namespace.
fakeroot=()
[[ $EUID == 0 ]] || fakeroot=(--fakeroot)

for name in "${names[@]}"; do
  [[ -f containers/$name.def ]] || {
    echo "build.sh: no recipe containers/$name.def" >&2
    exit 1
  }
  start=$SECONDS
  apptainer build --force "${fakeroot[@]}" "containers/$name.sif" "containers/$name.def"
  echo "built containers/$name.sif in $((SECONDS - start)) s: sha256:$(sha256sum "containers/$name.sif" | cut -d ' ' -f 1)"
done
