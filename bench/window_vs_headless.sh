#!/usr/bin/env bash
# Samples/s of a CNN trained in the lab's window against `reslab train` on the same machine, in
# interleaved rounds (BENCHMARKS.md, "Window against headless").
#
# Needs an X display (`Xvfb :99 -screen 0 1600x1000x24 &`, DISPLAY=:99), xdotool, python3, and a
# prepared lab state: start `HOME=$STATE reslab` once, pick the network (e.g. CNN, ResNet, n = 3
# on MNIST-10k, 400 steps), close the window. Each round then trains that network headless (with
# the spec and config the window saved) and in the window at each redraw rate, and prints the
# median of the steps' samples/s. The clicks are positions in a 1600x1000 screen (Train, the
# redraw choices); check them with `import -window root shot.png` if the layout changed.
#
# Usage: bench/window_vs_headless.sh STATE_HOME [ROUNDS] [RATES...]   (rates: auto 10 4 1)
set -euo pipefail
STATE=${1:?the prepared HOME}; ROUNDS=${2:-3}; shift 2 || true
RATES=("${@:-auto 1 10}"); read -r -a RATES <<< "${RATES[*]}"
BIN=$(realpath "${RESLAB:-$(dirname "$0")/../target/release/reslab}")
declare -A CLICK=([auto]="398 75" [10]="446 75" [4]="490 75" [1]="532 75")
OUT=$(mktemp -d)
median() { # run file -> median samples/s of its steps
  "$BIN" export "$1" --csv "$OUT/x.csv" >/dev/null
  python3 -c "import csv,statistics,sys; v=[float(r['value']) for r in csv.DictReader(open('$OUT/x.csv')) if r['series']=='samples_per_sec']; print('%.0f' % statistics.median(v))"
  rm -f "$OUT/x.csv"
}
window() { # rate -> median samples/s of a run trained in the window
  rm -rf "$STATE/saved_runs"
  (cd "$STATE" && HOME=$STATE "$BIN" >/dev/null 2>&1 &)
  sleep 6
  xdotool mousemove ${CLICK[$1]} click 1; sleep 1
  xdotool mousemove 260 15 click 1; sleep 1; xdotool mousemove 900 600
  local pid; pid=$(pgrep -n -f "$BIN\$")
  sleep "${WAIT:-100}"
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 1; done
  median "$(ls "$STATE"/saved_runs/*.reslab.json | head -1)"
}
f=$(ls "$STATE"/saved_runs/*.reslab.json 2>/dev/null | head -1 || true)
if [ -z "$f" ]; then window auto >/dev/null; f=$(ls "$STATE"/saved_runs/*.reslab.json | head -1); fi
python3 -c "import json; r=json.load(open('$f')); json.dump(r['spec'],open('$OUT/spec.json','w')); json.dump(r['config'],open('$OUT/config.json','w'))"
for round in $(seq "$ROUNDS"); do
  rm -f "$OUT"/h.*
  "$BIN" train --spec "$OUT/spec.json" --config "$OUT/config.json" --dataset mnist --out "$OUT/h" >/dev/null
  line="round $round: headless $(median "$OUT/h.reslab.json")"
  for r in "${RATES[@]}"; do line="$line, window $r $(window "$r")"; done
  echo "$line"
done
