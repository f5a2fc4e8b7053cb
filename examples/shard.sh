#!/usr/bin/env bash
# One shard of a video corpus: the videos under a folder are split over COUNT machines (or
# processes) and this one takes shard INDEX (0 .. COUNT-1).
#   examples/shard.sh INDEX COUNT VIDEOS_DIR OUT_DIR [COMMAND [FLAGS...]]   (COMMAND: describe)
# Every shard lists the same files in the same order (LC_ALL=C sort), so each video belongs to
# exactly one shard. Outputs go to OUT_DIR/shard-INDEX/ (names are unique within a run, and two
# folders may both hold a clip.mp4), results to OUT_DIR/shard-INDEX.jsonl, one JSON line a video.
# Share one response cache between shards and runs (VNARRATE_CACHE_DIR or --cache-dir on a shared
# disk); --skip-existing makes a rerun redo only what is missing. Add --batch to the flags for
# the Batch API's half price: each shard then submits its own batches and a rerun resumes them.
# INDEX may come from a Slurm array ($SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job
# ($JOB_COMPLETION_INDEX). Exit status: vnarrate's for this shard (0: every video done).
set -uo pipefail
usage="usage: shard.sh INDEX COUNT VIDEOS_DIR OUT_DIR [COMMAND [FLAGS...]]"
index=${1:?$usage} count=${2:?$usage} dir=${3:?$usage} out=${4:?$usage}
shift 4
[ $# -gt 0 ] || set -- describe
case "$index$count" in *[!0-9]*)
  echo "shard.sh: INDEX and COUNT must be whole numbers" >&2; exit 2 ;;
esac
if [ "$count" -lt 1 ] || [ "$index" -ge "$count" ]; then
  echo "shard.sh: INDEX must be between 0 and COUNT-1" >&2; exit 2
fi

mine=$(find "$dir" -type f \( -iname '*.mp4' -o -iname '*.mov' -o -iname '*.mkv' -o -iname '*.webm' \) \
  | LC_ALL=C sort | awk -v i="$index" -v n="$count" '(NR - 1) % n == i')
if [ -z "$mine" ]; then
  echo "shard $index/$count: no videos" >&2
  exit 0
fi
mkdir -p "$out"
printf '%s\n' "$mine" \
  | vnarrate "$@" - --out-dir "$out/shard-$index" --skip-existing --json > "$out/shard-$index.jsonl"
status=$?
echo "shard $index/$count: $(printf '%s\n' "$mine" | wc -l) videos, exit $status" >&2
exit $status
