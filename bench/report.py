#!/usr/bin/env python3
"""Turn bench/run.sh's measurements into Markdown tables.

usage: report.py RESULTS.tsv META.env [--out FILE] [--docs docs/performance.md]

RESULTS.tsv: one line per measurement, "system metric run status value"
(status ok or FAILED). META.env: KEY=value lines (machine, versions,
settings). Prints the report; --out writes it to FILE; --docs replaces the
part of that file between <!-- bench:begin --> and <!-- bench:end --> (or
appends the markers and the report when they are missing), so hand-written
text around them survives re-runs.
"""
import argparse
import statistics
import sys

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

SYSTEMS = [
    ("nginx-http", "nginx http proxy"),
    ("nginx-stream", "nginx stream"),
    ("mtls-http", "mtlsproxy http"),
    ("mtls-tcp", "mtlsproxy tcp"),
]
NAME = dict(SYSTEMS)

# metric -> (column title, format, higher is better)
METRICS = {
    "hs_rate": ("new mTLS conns/s", "{:.0f}", True),
    "hs_cpu": ("proxy CPU per new conn", "{:.2f} ms", False),
    "ka_rate": ("keep-alive req/s", "{:.0f}", True),
    "ka_cpu": ("CPU per req", "{:.1f} µs", False),
    "bulk_mbs": ("bulk MB/s", "{:.0f}", True),
    "bulk_cpu": ("CPU per MiB", "{:.2f} ms", False),
    "peak_rss": ("peak RSS", "{:.1f} MiB", False),
    "idle_kib": ("KiB per idle conn", "{:.1f}", False),
    "stime_new_rate": ("new conns/s (s_time)", "{:.0f}", True),
    "stime_reuse_rate": ("resumed conns/s (s_time)", "{:.0f}", True),
    "stime_new_cpu": ("CPU per new conn (s_time)", "{:.2f} ms", False),
    "stime_reuse_cpu": ("CPU per resumed conn", "{:.2f} ms", False),
    "scale_setup": ("handshakes/s to set them up", "{:.0f}", True),
    "scale_rss": ("RSS with them", "{:.1f} MiB", False),
    "scale_kib": ("KiB each", "{:.1f}", False),
    "scale_lat50_before": ("new request p50 before", "{:.0f} ms", False),
    "scale_lat99_before": ("p99 before", "{:.0f} ms", False),
    "scale_lat50_held": ("new request p50 while held", "{:.0f} ms", False),
    "scale_lat99_held": ("p99 while held", "{:.0f} ms", False),
}
BUSY_KINDS = [("hs", "new conns"), ("ka", "keep-alive"), ("bulk", "bulk")]
BUSY_PARTS = ["ab", "proxy", "backend", "idle", "steal"]
SCALE = ["scale_setup", "scale_rss", "scale_kib", "scale_lat50_before",
         "scale_lat99_before", "scale_lat50_held", "scale_lat99_held"]
MAIN = ["hs_rate", "hs_cpu", "ka_rate", "ka_cpu", "bulk_mbs", "bulk_cpu",
        "peak_rss", "idle_kib"]
RESUME = ["stime_new_rate", "stime_reuse_rate", "stime_new_cpu",
          "stime_reuse_cpu"]


class Failed:
    def __str__(self):
        return "FAILED"


FAILED = Failed()


def load(results_path, meta_path):
    runs = {}
    with open(results_path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            sys_, metric, run, status, value = parts
            runs.setdefault((sys_, metric), {})[run] = (
                float(value) if status == "ok" else FAILED)
    meta = {}
    with open(meta_path, encoding="utf-8") as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return runs, meta


class Report:
    def __init__(self, runs, meta):
        self.runs = runs
        self.meta = meta
        self.systems = [s for s, _ in SYSTEMS
                        if s in meta.get("SYSTEMS", "").split()]

    def values(self, s, m):
        """The runs' values in run order, None when not measured."""
        r = self.runs.get((s, m))
        return [r[k] for k in sorted(r, key=int)] if r else None

    def median(self, s, m):
        """The median, FAILED when any run failed, None when not measured."""
        v = self.values(s, m)
        if not v:
            return None
        if any(x is FAILED for x in v):
            return FAILED
        x = statistics.median(v)
        if m in ("peak_rss", "scale_rss"):
            x /= 1024.0
        return x

    def cell(self, s, m):
        x = self.median(s, m)
        if x is None:
            return "–"
        if x is FAILED:
            bad = sum(1 for y in self.values(s, m) if y is FAILED)
            return "**FAILED** (%d of %d runs)" % (bad, len(self.values(s, m)))
        text = METRICS[m][1].format(x)
        if m == "ka_rate":
            kept = self.values(s, "ka_kept")
            if kept and all(k is not FAILED for k in kept) and min(kept) < 0.999:
                text += " ¹"
        return text

    def busy_cell(self, s, kind):
        parts = []
        for p in BUSY_PARTS:
            v = self.values(s, "%s_busy_%s" % (kind, p))
            if not v or any(x is FAILED for x in v):
                return "–"
            parts.append("%.0f" % statistics.median(v))
        return " / ".join(parts)

    def busy(self):
        out = ["| system | " + " | ".join("%s: ab / proxy / backend / idle / steal" % t
                                           for _, t in BUSY_KINDS) + " |",
               "|---|" + "---|" * len(BUSY_KINDS)]
        for s in self.systems:
            out.append("| %s | %s |" % (NAME[s], " | ".join(
                self.busy_cell(s, k) for k, _ in BUSY_KINDS)))
        return out

    def spread(self, s, m):
        v = self.values(s, m)
        if not v or any(x is FAILED for x in v):
            return "–"
        lo, hi = min(v), max(v)
        if m in ("peak_rss", "scale_rss"):
            lo, hi = lo / 1024.0, hi / 1024.0
        fmt = METRICS[m][1]
        unit = ""
        if " " in fmt:
            fmt, unit = fmt.split(" ", 1)
            unit = " " + unit
        return fmt.format(lo) + "–" + fmt.format(hi) + unit

    def ratio(self, a, b, m):
        x, y = self.median(a, m), self.median(b, m)
        if x is None or y is None:
            return None
        if x is FAILED or y is FAILED:
            return FAILED
        if y == 0:
            return None
        return x / y

    def round_ratios(self, a, bs, m):
        """Per-round ratios of a against the better of bs in the same round
        (the rounds interleave the systems, so both sides of one ratio met
        the same machine), in round order; None when not measured."""
        ra = self.runs.get((a, m))
        if not ra:
            return None
        out = []
        for run in sorted(ra, key=int):
            x = ra[run]
            ys = [self.runs.get((b, m), {}).get(run) for b in bs]
            ys = [y for y in ys if isinstance(y, float) and y > 0]
            if x is FAILED or not ys:
                return FAILED
            y = max(ys) if METRICS[m][2] else min(ys)
            out.append(x / y)
        return out

    def best_nginx(self, m):
        """The nginx system with the better median for metric m."""
        cands = []
        for s in ("nginx-http", "nginx-stream"):
            x = self.median(s, m)
            if isinstance(x, float):
                cands.append((x, s))
        if not cands:
            return None
        return max(cands)[1] if METRICS[m][2] else min(cands)[1]

    @staticmethod
    def fmt_ratio(r):
        if r is None:
            return "–"
        if r is FAILED:
            return "n/a (failed)"
        return "%.2f×" % r

    # ------------------------------------------------------------ tables

    def table(self, cols, cellfn):
        out = ["| system | " + " | ".join(METRICS[m][0] for m in cols) + " |",
               "|---|" + "---|" * len(cols)]
        for s in self.systems:
            out.append("| %s | %s |" % (NAME[s], " | ".join(cellfn(s, m) for m in cols)))
        return out

    def ratios(self):
        rows = [("new mTLS conns/s", "hs_rate"), ("proxy CPU per new conn", "hs_cpu"),
                ("keep-alive req/s", "ka_rate"), ("CPU per req", "ka_cpu"),
                ("bulk MB/s", "bulk_mbs"), ("CPU per MiB", "bulk_cpu"),
                ("resumed conns/s (s_time)", "stime_reuse_rate"),
                ("CPU per resumed conn", "stime_reuse_cpu"),
                ("peak RSS", "peak_rss"), ("KiB per idle conn", "idle_kib")]
        out = ["| metric | better | mtlsproxy http / nginx http proxy | mtlsproxy tcp / nginx stream |",
               "|---|---|---|---|"]
        for title, m in rows:
            better = "higher" if METRICS[m][2] else "lower"
            out.append("| %s | %s | %s | %s |" % (
                title, better,
                self.fmt_ratio(self.ratio("mtls-http", "nginx-http", m)),
                self.fmt_ratio(self.ratio("mtls-tcp", "nginx-stream", m))))
        return out

    def targets(self):
        out = ["| target (issue 5) | mtlsproxy | against | ratio of the medians "
               "| ratio in each round | target | result |",
               "|---|---|---|---|---|---|---|"]

        def row(title, mine, theirs, m, op, goal, per_round=None):
            if mine not in self.systems or theirs is None or theirs not in self.systems:
                return
            r = self.ratio(mine, theirs, m)
            rr = self.round_ratios(mine, per_round or [theirs], m)
            if r is None:
                result = "n/a"
            elif r is FAILED or rr is FAILED:
                result = "n/a (failed)"
            else:
                def ok(x):
                    return x >= goal if op == "≥" else x <= goal
                # met only when the medians and the median round both say so
                both = [r] + ([statistics.median(rr)] if rr else [])
                result = "**met**" if all(ok(x) for x in both) else "**not met**"
            if rr is None:
                rr_s = "–"
            elif rr is FAILED:
                rr_s = "n/a (failed)"
            else:
                rr_s = ", ".join("%.2f×" % x for x in rr)
            goal_s = "%s %s" % (op, "2/3" if abs(goal - 2 / 3) < 1e-9 else "%g×" % goal)
            out.append("| %s | %s (%s) | %s (%s) | %s | %s | %s | %s |" % (
                title, NAME[mine], self.cell(mine, m), NAME[theirs],
                self.cell(theirs, m), self.fmt_ratio(r), rr_s, goal_s, result))

        best = self.best_nginx("hs_rate")
        nginxes = [x for x in ("nginx-http", "nginx-stream") if x in self.systems]
        for mine in ("mtls-http", "mtls-tcp"):
            row("new mTLS conns/s vs the better nginx", mine, best, "hs_rate", "≥", 1.5,
                per_round=nginxes)
        row("proxy CPU per new conn", "mtls-http", "nginx-http", "hs_cpu", "≤", 2 / 3)
        row("proxy CPU per new conn", "mtls-tcp", "nginx-stream", "hs_cpu", "≤", 2 / 3)
        row("keep-alive req/s (http mode)", "mtls-http", "nginx-http", "ka_rate", "≥", 1.2)
        row("bulk MB/s", "mtls-http", "nginx-http", "bulk_mbs", "≥", 1.3)
        row("bulk MB/s (tcp mode; issue 5 names the http proxy)", "mtls-tcp", "nginx-http",
            "bulk_mbs", "≥", 1.3)
        row("KiB per idle connection", "mtls-http", "nginx-http", "idle_kib", "≤", 0.5)
        row("KiB per idle connection", "mtls-tcp", "nginx-http", "idle_kib", "≤", 0.5)
        for mine in ("mtls-http", "mtls-tcp"):
            if mine not in self.systems:
                continue
            x = self.median(mine, "stime_reuse_rate")
            if x is None:
                continue
            result = "**met**" if isinstance(x, float) else "**not met**"
            out.append("| TLS session resumption works | %s (%s) | – | – | – | sessions resume | %s |"
                       % (NAME[mine], self.cell(mine, "stime_reuse_rate"), result))
        return out

    def render(self):
        m = self.meta
        quick = m.get("QUICK") == "1"
        runs = int(m.get("RUNS", "1"))
        lines = []
        lines.append("_Generated by `make bench` (bench/run.sh, bench/report.py) on %s; "
                     "re-running replaces everything between the bench markers._"
                     % m.get("DATE", "?"))
        if quick:
            lines += ["", "**QUICK MODE (BENCH_QUICK=1): small samples, for trying things "
                      "out only; not a result.**"]
        lines += [
            "",
            "- Machine: %s cores, %s, %s, %s RAM; load average %s at the start, %s at the end"
            % (m.get("NPROC"), m.get("CPU"), m.get("KERNEL"), m.get("MEM"),
               m.get("LOAD_START"), m.get("LOAD_END", "?")),
            "- Versions: %s; %s; %s; %s; %s"
            % (m.get("NGINX"), m.get("OPENSSL"), m.get("MTLSPROXY"), m.get("AB"), m.get("NODE")),
        ]
        tls = sorted({m[k] for k in m if k.startswith("TLS_")})
        if tls:
            lines.append("- TLS as ab negotiated it: %s" % "; ".join(tls))
        lines += [
            "- Runs: median of %d (ab %s for new connections, %s for keep-alive, %s on "
            "1 MiB for bulk; s_time %s s each; %s idle connections); MB = 10^6 bytes, "
            "MB/s counts headers too" % (runs, m.get("HS"), m.get("KA"), m.get("BULK"),
                                         m.get("STIME"), m.get("IDLE_N")),
            "",
        ]
        lines += self.table(MAIN, self.cell)
        if any(self.cell(s, "ka_rate").endswith("¹") for s in self.systems):
            lines += ["", "¹ some keep-alive connections were closed by the proxy and "
                      "re-opened by ab (new handshakes inside the keep-alive run); "
                      "see bench/out/logs."]
        if any(self.values(s, "hs_busy_ab") for s in self.systems):
            lines += ["", "Who was busy during those ab runs, in percent of one core "
                      "(medians; the %s cores make %d %%; steal is time the "
                      "hypervisor gave to other guests; the rest is the kernel's "
                      "work outside these processes and the bench itself). ab is "
                      "single-threaded: near 100 %% it is the limit, not the proxy:"
                      % (m.get("NPROC", "?"), 100 * int(m.get("NPROC", "1"))), ""]
            lines += self.busy()
        lines += ["", "Session resumption (openssl s_time, one connection at a time, "
                  "each fetching `/`):", ""]
        lines += self.table(RESUME, self.cell)
        scale = [x for x in self.systems if self.values(x, "scale_kib")]
        if scale:
            lines += ["", "Scale: %s handshaken idle mTLS connections held at once "
                      "(http front ends; a tcp front end needs two descriptors per client "
                      "and the machine's limit is lower), and the latency of new "
                      "requests (`ab -n 300 -c 1`, a full mTLS handshake each) just "
                      "before and while they are held (one run; ab's percentiles are "
                      "whole milliseconds):" % m.get("SCALE_N", "?"), ""]
            out = ["| system | " + " | ".join(METRICS[x][0] for x in SCALE) + " |",
                   "|---|" + "---|" * len(SCALE)]
            for x in scale:
                out.append("| %s | %s |" % (NAME[x], " | ".join(self.cell(x, y) for y in SCALE)))
            lines += out
        if runs > 1:
            lines += ["", "Spread over the %d runs (min–max):" % runs, ""]
            lines += self.table(MAIN + ["stime_reuse_rate"], self.spread)
        lines += ["", "mtlsproxy / nginx (medians; a ratio above 1 is better where "
                  "higher is better, below 1 where lower is better):", ""]
        lines += self.ratios()
        lines += ["", "Targets (a ratio in each round compares the systems measured "
                  "in the same round, minutes apart, and the better nginx of that "
                  "round; a target counts as met when both the ratio of the medians "
                  "and the median of the rounds' ratios meet it):", ""]
        lines += self.targets()
        return "\n".join(lines) + "\n"


DOC_TEMPLATE = """# Performance

mtlsproxy against nginx with `ssl_verify_client on`, on the same machine,
with the same clients. Reproduce with `make bench`.

"""


def update_docs(path, section):
    block = BEGIN + "\n" + section + END + "\n"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = DOC_TEMPLATE
    b = text.find(BEGIN)
    e = text.find(END, b + 1) if b >= 0 else -1
    if b >= 0 and e >= 0:
        tail = text[e + len(END):]
        if tail.startswith("\n"):
            tail = tail[1:]
        text = text[:b] + block + tail
    else:
        if not text.endswith("\n"):
            text += "\n"
        text += "\n" + block
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("meta")
    ap.add_argument("--out")
    ap.add_argument("--docs")
    a = ap.parse_args()
    runs, meta = load(a.results, a.meta)
    text = Report(runs, meta).render()
    sys.stdout.write("\n" + text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    if a.docs:
        update_docs(a.docs, text)
        print("\nbench: results written to %s (between the bench markers)" % a.docs)
    elif a.out:
        print("\nbench: results in %s (docs/performance.md not changed)" % a.out)


if __name__ == "__main__":
    main()
