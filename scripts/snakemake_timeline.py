"""Start, end and length (seconds from the first job) of every job in a Snakemake log, one line each:
  python scripts/snakemake_timeline.py .snakemake/log/<run>.snakemake.log > timeline.txt"""
import re, sys
from datetime import datetime

text = open(sys.argv[1]).read()
stamp, jobs, t0 = None, {}, None
for line in text.splitlines():
    if m := re.match(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$", line):
        stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        t0 = t0 or stamp
    elif m := re.match(r"^(?:local)?rule (\w+):$", line):
        current = {"rule": m.group(1), "start": stamp, "wc": ""}
    elif m := re.match(r"^\s+jobid: (\d+)$", line):
        jobs[int(m.group(1))] = current
    elif m := re.match(r"^\s+wildcards: (.*)$", line):
        current["wc"] = m.group(1)
    elif m := re.match(r"^Finished jobid: (\d+)", line):
        jobs[int(m.group(1))]["end"] = stamp
rows = [(int((j["start"] - t0).total_seconds()), int((j["end"] - t0).total_seconds()), j) for j in jobs.values() if "end" in j]
for s, e, j in sorted(rows, key=lambda r: (r[0], r[1])):
    print(f"{s:5d} {e:5d} {e - s:4d} {j['rule']} {j['wc']}")
