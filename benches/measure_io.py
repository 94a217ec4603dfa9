# Runs a command and reports what it wrote: the child's rusage after it ends (ru_oublock, in
# 512-byte blocks written to files, includes the final save) and the last /proc/PID/io sample
# (taken every 0.5 s, so it misses the last half second). Used for the 100k-step measurement in
# BENCHMARKS.md:
#   python3 benches/measure_io.py target/release/reslab train --preset mlp-res-20 --width 64 \
#       --dataset mnist --steps 100000 --probe-every 10 --out /tmp/io/res20-100k
# The command's output goes to measure_io.out in the current folder.
import os, sys, time, subprocess, json
p = subprocess.Popen(sys.argv[1:], stdout=open('measure_io.out', 'w'), stderr=subprocess.STDOUT)
start = time.time(); last = {}
while True:
    r = os.wait4(p.pid, os.WNOHANG)
    if r[0] != 0:
        _, status, ru = r; break
    try:
        last = dict(l.split(': ') for l in open(f'/proc/{p.pid}/io').read().split('\n') if l)
    except Exception:
        pass
    time.sleep(0.5)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "secs": round(time.time()-start,1),
  "ru_oublock_bytes": ru.ru_oublock*512, "maxrss_kb": ru.ru_maxrss,
  "last_wchar": int(last.get('wchar',0)), "last_write_bytes": int(last.get('write_bytes',0))}))
