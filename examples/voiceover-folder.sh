#!/usr/bin/env bash
# Narrate every video in a folder into OUT_DIR, then retry the failures: --skip-existing
# redoes only the videos whose run manifest is not complete, so reruns are cheap (and the
# response cache makes repeated requests free).
#   examples/voiceover-folder.sh VIDEOS_DIR OUT_DIR [extra vnarrate flags...]
set -uo pipefail
dir=${1:?usage: voiceover-folder.sh VIDEOS_DIR OUT_DIR [flags...]}
out=${2:?usage: voiceover-folder.sh VIDEOS_DIR OUT_DIR [flags...]}
shift 2
tries=${TRIES:-3}

for attempt in $(seq 1 "$tries"); do
  vnarrate voiceover "$dir" --recursive --out-dir "$out" --skip-existing --json "$@" \
    > "$out.attempt$attempt.jsonl"
  status=$?
  if [ "$status" -eq 0 ]; then
    echo "all videos narrated (attempt $attempt)" >&2
    exit 0
  fi
  # 3 (configuration) and 2 (usage) will not get better by retrying.
  if [ "$status" -eq 2 ] || [ "$status" -eq 3 ]; then
    exit "$status"
  fi
  echo "attempt $attempt: some videos failed (exit $status); retrying those" >&2
  sleep "${RETRY_DELAY:-5}"
done
exit "$status"
