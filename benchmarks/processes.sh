#!/bin/sh
# A folder of small images restored by 1 process x 2 threads (one) or 2 processes x 1 thread each (two),
# for timing the two against each other on a 2-core CPU (see benchmarks/README.md, "Processes").
#
#   sh benchmarks/processes.sh images IMAGES_DIR      # the 8 photos measured: 64x64 crops of skimage's astronaut
#   sh benchmarks/processes.sh one|two IMAGES_DIR [NUM_ITER]
#
# Each timed call restores the whole folder into a fresh temporary --out_dir (removed after).
set -eu
mode=$1 images=$2 num_iter=${3:-150}
if [ "$mode" = images ]; then
  mkdir -p "$images"
  python -c "
import sys, imageio.v3 as iio
from skimage import data
photo = data.astronaut()
for i in range(8):
    y, x = 50 * (i % 4), 64 * (i // 4) + 100
    iio.imwrite(f'{sys.argv[1]}/p{i}.png', photo[y:y + 64, x:x + 64])
" "$images"
  exit
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
restore="python -m experiments.restore --config=quick --images=$images --num_iter=$num_iter --config.log_every=1000"
single="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"  # one thread per process
case $mode in
  one) $restore --out_dir="$out/o" ;;
  two) XLA_FLAGS="$single" taskset -c 0 $restore --out_dir="$out/o" --shard=0/2 &
       first=$!
       XLA_FLAGS="$single" taskset -c 1 $restore --out_dir="$out/o" --shard=1/2
       wait $first ;;
  *) echo "usage: $0 one|two IMAGES_DIR [NUM_ITER]" >&2; exit 2 ;;
esac
test "$(python -c "import json,sys; print(len(json.load(open(sys.argv[1]))['images']))" "$out/o/metrics.json")" -gt 0
