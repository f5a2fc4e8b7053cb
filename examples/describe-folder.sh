#!/usr/bin/env bash
# Describe every video under a folder into one JSONL file (one JSON object per video).
#   examples/describe-folder.sh VIDEOS_DIR [OUT.jsonl]
# Needs OPENAI_API_KEY (or a .env / local server, see examples/local-server.env).
# Exit status: vnarrate's (0 when every video was described; see the README's exit codes).
set -uo pipefail
dir=${1:?usage: describe-folder.sh VIDEOS_DIR [OUT.jsonl]}
out=${2:-descriptions.jsonl}

# find | vnarrate ... - : paths with spaces or unicode are fine (one per line on stdin).
find "$dir" -type f \( -iname '*.mp4' -o -iname '*.mov' -o -iname '*.mkv' -o -iname '*.webm' \) \
  | sort \
  | vnarrate describe - --json --jobs "${JOBS:-4}" > "$out"
status=$?
echo "wrote $(wc -l < "$out") result lines to $out (exit $status)" >&2
exit $status
