"""Where a page's first visit spends its time in the browser (a measurement, not a test).

    .venv/bin/python tests/app/trace_first_visit.py --pages feature_perturbation correlation_report --read-home 10

For each page: a fresh `streamlit run app/Home.py`, Home drawn, `--read-home` seconds on Home, then
a Chromium performance trace (devtools.timeline + V8 compile) and a DevTools network log from the
click on the page's sidebar link until the page is drawn (`first_visit.wait_drawn`). Printed:

- wall seconds and the server's CPU seconds (as `first_visit.py`);
- every file fetched over HTTP after the click (bytes on the wire, start and end after the click),
  and the bytes Streamlit sent over its websocket (the page's script run: deltas, images inline);
- the renderer main thread's busy time after the click by kind of work (self time: script
  compile, script run, style and layout, paint, HTML parsing, GC), and image decoding on any thread.

`--json PATH` keeps the figures; `--keep-trace DIR` keeps each raw trace (open in chrome://tracing).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_harness import CHROMIUM, CHROMIUM_FLAGS, stop_server  # noqa: E402
from first_visit import PAGES, _launch, _open_from_sidebar, _wait_up, cpu_seconds, wait_drawn  # noqa: E402

CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8", "disabled-by-default-v8.compile",
              "blink", "loading", "cc", "gpu", "v8.execute"]
KINDS = {  # trace event name → kind of work (the rest is "other")
    "v8.compile": "script compile", "v8.compileModule": "script compile", "V8.CompileCode": "script compile",
    "v8.parseOnBackground": "script compile", "V8.ScriptCompiler": "script compile",
    "V8.CompileLazy": "script compile", "V8.ParseProgram": "script compile", "V8.ParseFunction": "script compile",
    "EvaluateScript": "script run", "v8.evaluateModule": "script run", "FunctionCall": "script run",
    "v8.run": "script run", "v8.callFunction": "script run", "TimerFire": "script run", "EventDispatch": "script run",
    "FireAnimationFrame": "script run", "RunMicrotasks": "script run", "V8.Execute": "script run",
    "UpdateLayoutTree": "style + layout", "Layout": "style + layout", "RecalculateStyles": "style + layout",
    "ParseAuthorStyleSheet": "style + layout", "UpdateLayerTree": "style + layout", "HitTest": "style + layout",
    "Paint": "paint", "PaintImage": "paint", "PrePaint": "paint", "Layerize": "paint", "UpdateLayer": "paint",
    "CompositeLayers": "paint", "Commit": "paint",
    "ParseHTML": "parse HTML",
    "MinorGC": "GC", "MajorGC": "GC", "V8.GCScavenger": "GC", "V8.GCFinalizeMC": "GC", "BlinkGC.AtomicPhase": "GC",
    "V8.GC_MC_BACKGROUND_MARKING": "GC", "ThreadState::performIdleLazySweep": "GC",
    "Decode Image": "image decode", "ImageDecodeTask": "image decode", "Decode LazyPixelRef": "image decode",
}


def _kind(name: str) -> str:
    """The kind of work of one trace event name (V8's own events by their prefix)."""
    if name in KINDS:
        return KINDS[name]
    if name.startswith(("V8.Parse", "V8.PreParse", "V8.Compile", "V8.LazyCompile", "V8.Finalize")):
        return "script compile"
    if name.startswith(("V8.GC", "BlinkGC", "V8.ExternalCallback")):
        return "GC" if "GC" in name else "script run"
    if name.startswith(("V8.", "FlushInstructionCache")):
        return "script run"  # deoptimisation, interrupts, builtins: time V8 spends running the scripts
    return "other"


def _self_times(events: list[dict], tid: int, pid: int) -> dict[str, float]:
    """Self milliseconds per event name on one thread (complete 'X' events and B/E pairs, nested)."""
    spans = []
    open_b: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e.get("pid") != pid or e.get("tid") != tid:
            continue
        if e.get("ph") == "X" and "dur" in e:
            spans.append((e["ts"], e["ts"] + e["dur"], e["name"]))
        elif e.get("ph") == "B":
            open_b[e["name"]].append(e["ts"])
        elif e.get("ph") == "E" and open_b.get(e["name"]):
            start = open_b[e["name"]].pop()
            spans.append((start, e["ts"], e["name"]))
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: dict[str, float] = defaultdict(float)
    stack: list[list[Any]] = []  # [end, name, child time]

    def close(until: float) -> None:
        while stack and stack[-1][0] <= until:
            end, name, start, child = stack.pop()
            out[name] += (end - start - child) / 1000
            if stack:
                stack[-1][3] += end - start

    for start, end, name in spans:
        close(start)
        stack.append([end, name, start, 0.0])
    close(float("inf"))
    return dict(out)


def _breakdown(trace: dict) -> dict[str, Any]:
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    mains = [key for key, name in names.items() if name == "CrRendererMain"]
    # the page's renderer: the main thread with the most work
    busiest, per_name = None, {}
    for pid, tid in mains:
        times = _self_times(events, tid, pid)
        if busiest is None or sum(times.values()) > sum(per_name.values()):
            busiest, per_name = (pid, tid), times
    kinds: dict[str, float] = defaultdict(float)
    for name, ms in per_name.items():
        if name in ("RunTask", "ThreadControllerImpl::RunTask", "ThreadPool_RunTask"):
            continue  # the task wrapper itself: its self time is scheduling overhead, kept under "other"
        kinds[_kind(name)] += ms
    top = sorted(per_name.items(), key=lambda kv: -kv[1])[:12]
    # tasks on the main thread: the busy time (top-level RunTask durations)
    busy = sum(e["dur"] for e in events if busiest and e.get("pid") == busiest[0] and e.get("tid") == busiest[1]
               and e.get("ph") == "X" and e.get("name") == "RunTask" and "dur" in e) / 1000
    decode = sum(e.get("dur", 0) for e in events if e.get("ph") == "X" and e.get("name") in
                 ("Decode Image", "ImageDecodeTask")) / 1000
    span = [e["ts"] for e in events if e.get("ph") in ("X", "B", "E") and busiest and e.get("pid") == busiest[0]]
    return {"main_busy_ms": round(busy, 1), "main_kinds_ms": {k: round(v, 1) for k, v in sorted(kinds.items())},
            "main_top_ms": [(n, round(ms, 1)) for n, ms in top], "image_decode_ms_all_threads": round(decode, 1),
            "trace_span_s": round((max(span) - min(span)) / 1e6, 2) if span else 0.0}


def trace_page(browser, slug: str, *, read_home_s: float, keep: Path | None) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = open(tempfile.mktemp(prefix=f"trace-{slug}-", suffix=".log"), "w")
    process, url, started = _launch(None, None, log)
    try:
        _wait_up(url, process)
        page.goto(url, wait_until="commit")
        home = wait_drawn(page, since=started, pid=process.pid)
        time.sleep(read_home_s)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        requests: dict[str, dict] = {}
        ws = {"frames": 0, "bytes": 0, "sent": [], "received": []}

        def sent(e):
            requests[e["requestId"]] = {"url": e["request"]["url"].split("/")[-1][:60] or "/",
                                        "t0": e["timestamp"]}

        def done(e):
            if e["requestId"] in requests:
                requests[e["requestId"]].update(bytes=e["encodedDataLength"], t1=e["timestamp"])

        def frame(e):
            ws["frames"] += 1
            ws["received"].append(e["timestamp"])
            data = e["response"]["payloadData"]
            ws["bytes"] += len(data) * 3 // 4 if e["response"].get("opcode") == 2 else len(data)

        cdp.on("Network.requestWillBeSent", sent)
        cdp.on("Network.loadingFinished", done)
        cdp.on("Network.webSocketFrameReceived", frame)
        cdp.on("Network.webSocketFrameSent", lambda e: ws["sent"].append(e["timestamp"]))
        browser.start_tracing(page=page, categories=CATEGORIES)
        cpu0, clicked = cpu_seconds(process.pid), time.monotonic()
        _open_from_sidebar(page, slug)
        first = wait_drawn(page, since=clicked, pid=process.pid)
        first_cpu = wait_drawn.cpu_at_draw - cpu0
        raw = browser.stop_tracing()
        trace = json.loads(raw)
        if keep is not None:
            (keep / f"{slug}.json").write_bytes(raw)
        base = min((r["t0"] for r in requests.values()), default=0.0)
        fetched = sorted(({"file": r["url"], "kB": round(r.get("bytes", 0) / 1024, 1),
                           "start_s": round(r["t0"] - base, 2), "end_s": round(r.get("t1", r["t0"]) - base, 2)}
                          for r in requests.values()), key=lambda r: -r["kB"])
    finally:
        stop_server(process)
        page.close()
        log.close()
    asked = min(ws["sent"], default=0.0)  # the browser asks for the page's script run (CDP clock)
    answers = [t - asked for t in ws["received"] if t >= asked]
    result = {"page": slug, "home_drawn_s": round(home, 2), "first_visit_s": round(first, 2),
              "server_first_answer_s": round(min(answers, default=float("nan")), 2),
              "server_last_answer_s": round(max(answers, default=float("nan")), 2),
              "server_cpu_s": round(first_cpu, 2), "http_kB": round(sum(f["kB"] for f in fetched), 1),
              "http_files": fetched, "websocket_frames": ws["frames"], "websocket_kB": round(ws["bytes"] / 1024, 1),
              **_breakdown(trace)}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", nargs="*", default=["feature_perturbation", "correlation_report"],
                        choices=list(PAGES))
    parser.add_argument("--read-home", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep-trace", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            for slug in args.pages:
                r = trace_page(browser, slug, read_home_s=args.read_home, keep=args.keep_trace)
                results.append(r)
                print(f"\n{slug}: first visit {r['first_visit_s']} s wall, server {r['server_cpu_s']} CPU s; "
                      f"main thread busy {r['main_busy_ms']} ms; image decode {r['image_decode_ms_all_threads']} ms")
                print(f"  script run asked → first / last websocket message from the server: "
                      f"{r['server_first_answer_s']} / {r['server_last_answer_s']} s")
                print(f"  HTTP after the click: {r['http_kB']} kB in {len(r['http_files'])} files; "
                      f"websocket {r['websocket_kB']} kB in {r['websocket_frames']} frames")
                for f in r["http_files"][:8]:
                    print(f"    {f['file']}: {f['kB']} kB, {f['start_s']}–{f['end_s']} s")
                print("  main thread self time by kind (ms):", r["main_kinds_ms"])
                print("  top events (ms):", r["main_top_ms"])
        finally:
            browser.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
