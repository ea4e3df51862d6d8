"""Serving side by side, in one run (issue 13): the model's in-process limits, smlocal's server
(its defaults and its best configuration) and the AWS stack (toolkit + TorchServe), in
alternating rounds so that the machine's drift falls on every configuration alike.

    python -m harness.benchmarks.serving --model-dir .smlocal/model --out docs/serving
    python -m harness.benchmarks.serving --model-dir M --server host --reference none  # no Docker
    python -m harness.benchmarks.serving --model-dir M --out D --reference venv  # no image

The AWS stack is the reference image (`smlocal image build --reference`), or a venv on this host
with sagemaker-pytorch-inference==2.0.25, torchserve==0.12.0 and setuptools<81 (plus what the
handlers import: torch and transformers, e.g. a .pth file naming .venv's site-packages) and
Java 17, run in its own pid namespace (harness.bench.servers.VenvReferenceServer).

Each round measures, in the same order (A B C ... A B C ...):
- in-process, one sentence per call and 16 per call: the handlers' own input_fn and predict_fn
  (tokenization and the forward) and a JSON encoding of the logits, in this process, with no
  server: the limits a server is held to;
- each server configuration, started afresh (a container of the image on a loopback port, or
  `smlocal serve` with --server host): start -> first successful invocation, then load from
  `smlocal bench`'s generator at concurrency 1, 4 and 16 (one CoLA sentence per request, as a
  JSON string), then the memory of the server's process tree.
Figures are medians over the rounds. Writes serving.md (the tables and the ratios against the
targets of issue 13), serving.png and serving.json to --out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from harness.bench.drivers import http_driver
from harness.bench.load import Budget, run_level
from harness.bench.process import TreeFigures, tree_figures
from harness.bench.servers import (
    ContainerServer,
    HostServer,
    Server,
    ServerError,
    VenvReferenceServer,
)
from harness.bench.stats import LevelStats
from harness.bench.workload import BenchRequest, WorkloadError, read_sentences, sentence_requests
from harness.reference_image import REFERENCE_TAG
from harness.trace import COLA_SENTENCES

# Before transformers is imported (E8): the model is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LEVELS = (1, 4, 16)
CORES = os.cpu_count() or 1
BATCH = 16
DEFAULT_REFERENCE_VENV = ".smlocal/reference-venv"
# smlocal's best configuration unless --smlocal-best says otherwise: batches of up to 16.
SMLOCAL_BEST = {"SAGEMAKER_TS_BATCH_SIZE": "16", "SAGEMAKER_TS_MAX_BATCH_DELAY": "5"}
# The AWS stack's best measured here (issue 13): 2 workers x 1 thread, TorchServe batches of 8.
# The AWS entrypoint overwrites SAGEMAKER_MODEL_SERVER_WORKERS; the TorchServe variables win.
AWS_BEST = {"SAGEMAKER_TS_MIN_WORKERS": "2", "SAGEMAKER_TS_MAX_WORKERS": "2",
            "OMP_NUM_THREADS": "1", "SAGEMAKER_TS_BATCH_SIZE": "8"}
# Targets of issue 13.
TARGET_C16_OF_BATCHED = 0.85
TARGET_C16_OVER_AWS = 1.5
TARGET_C1_OVERHEAD_MS = 1.0
TARGET_MEMORY_MB = 600.0

Stack = Literal["smlocal", "aws"]


@dataclass(frozen=True)
class ServerConfiguration:
    name: str
    stack: Stack
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InProcessRound:
    name: str
    sentences_per_call: int
    calls: int
    wall_s: float
    p50_ms: float
    mean_ms: float

    @property
    def sentences_per_s(self) -> float:
        return self.calls * self.sentences_per_call / self.wall_s


@dataclass(frozen=True)
class ServerRound:
    name: str
    start_s: float
    memory: TreeFigures
    levels: dict[int, LevelStats]


# --- in process -------------------------------------------------------------------------------


def load_handlers(code_dir: Path, program: str = "inference") -> ModuleType:
    """The handler module as the runtime imports it: code_dir on sys.path (S14)."""
    path = code_dir / f"{program.removesuffix('.py')}.py"
    spec = importlib.util.spec_from_file_location(f"smlocal_bench_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no handler module at {path}")
    sys.path.insert(0, str(code_dir))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_process_call(handlers: ModuleType, model: Any) -> Callable[[bytes], bytes]:
    """What a server does for one request, minus the server: input_fn, predict_fn, and the
    logits as JSON (the default output_fn's encoding)."""

    def call(body: bytes) -> bytes:
        data = handlers.input_fn(body.decode("utf-8"), "application/json")
        prediction = handlers.predict_fn(data, model)
        return json.dumps(prediction.detach().cpu().numpy().tolist()).encode("utf-8")

    return call


def measure_in_process(name: str, call: Callable[[bytes], bytes], sentences: Sequence[str],
                       per_call: int, calls: int, warmup: int = 3) -> InProcessRound:
    bodies = []
    for number in range(max(calls, 1)):
        first = number * per_call
        chunk = [sentences[(first + k) % len(sentences)] for k in range(per_call)]
        bodies.append(json.dumps(chunk[0] if per_call == 1 else chunk).encode("utf-8"))
    for body in bodies[:warmup]:
        call(body)
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        call(body)
        latencies.append(time.perf_counter() - sent)
    wall = time.perf_counter() - started
    return InProcessRound(name=name, sentences_per_call=per_call, calls=len(bodies),
                          wall_s=wall, p50_ms=statistics.median(latencies) * 1000,
                          mean_ms=statistics.fmean(latencies) * 1000)


# --- servers ----------------------------------------------------------------------------------


def start_server(configuration: ServerConfiguration, args: argparse.Namespace) -> Server:
    model_dir, code_dir = Path(args.model_dir), Path(args.code)
    if configuration.stack == "aws" and args.reference == "venv":
        return VenvReferenceServer(Path(args.reference_venv), model_dir, code_dir,
                                   configuration.environ)
    if configuration.stack == "aws":
        return ContainerServer(args.reference_image, model_dir, code_dir,
                               configuration.environ, name_prefix="smlocal-bench-aws",
                               address=args.container_address)
    if args.server == "host":
        return HostServer(model_dir, code_dir, configuration.environ)
    return ContainerServer(args.image, model_dir, code_dir, configuration.environ,
                           name_prefix="smlocal-bench", address=args.container_address)


def measure_server(configuration: ServerConfiguration, args: argparse.Namespace,
                   requests: Sequence[BenchRequest]) -> ServerRound:
    with start_server(configuration, args) as server:
        start_s = server.wait_until_serving(requests[0])
        driver = http_driver(server.base_url, args.client)
        levels: dict[int, LevelStats] = {}
        for concurrency in LEVELS:
            run = run_level(driver, requests, concurrency, Budget(requests=args.requests),
                            warmup=concurrency)
            levels[concurrency] = LevelStats.of(run)
        memory = tree_figures(server.pid)
    return ServerRound(configuration.name, start_s, memory, levels)


# --- the report -------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summarize(in_process: Sequence[InProcessRound], servers: Sequence[ServerRound]
              ) -> dict[str, Any]:
    """Medians over the rounds, by configuration."""
    summary: dict[str, Any] = {"in_process": {}, "servers": {}}
    for name in dict.fromkeys(r.name for r in in_process):
        rounds = [r for r in in_process if r.name == name]
        summary["in_process"][name] = {
            "sentences_per_call": rounds[0].sentences_per_call,
            "p50_ms": _median([r.p50_ms for r in rounds]),
            "sentences_per_s": _median([r.sentences_per_s for r in rounds]),
            "rounds": len(rounds),
        }
    for name in dict.fromkeys(r.name for r in servers):
        measured = [r for r in servers if r.name == name]
        entry: dict[str, Any] = {
            "rounds": len(measured),
            "start_s": _median([r.start_s for r in measured]),
            "rss_mb": _median([r.memory.rss_mb for r in measured]),
            "pss_mb": (_median([r.memory.pss_mb for r in measured if r.memory.pss_mb is not None])
                       if all(r.memory.pss_mb is not None for r in measured) else None),
            "processes": measured[-1].memory.processes,
            "errors": sum(sum(level.errors.values()) for r in measured
                          for level in r.levels.values()),
        }
        for concurrency in LEVELS:
            levels = [r.levels[concurrency] for r in measured]
            latencies = [level.latency_ms for level in levels if level.latency_ms is not None]
            entry[f"c{concurrency}"] = {
                "rps": _median([level.throughput_rps for level in levels]),
                "p50_ms": _median([lat.p50 for lat in latencies]) if latencies else None,
                "p99_ms": _median([lat.p99 for lat in latencies]) if latencies else None,
                # The generator's share of the machine: CPU it took per second of the level,
                # per core (it competes with the server on the same cores).
                "generator_cpu_share": _median([
                    (level.client_cpu_ms_per_request or 0.0) / 1000 * level.throughput_rps
                    / CORES for level in levels]),
            }
        summary["servers"][name] = entry
    return summary


def ratios(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The figures issue 13 sets targets for, from this run's medians."""
    single = summary["in_process"].get("in-process, 1 sentence per call")
    batched = summary["in_process"].get(f"in-process, {BATCH} sentences per call")
    servers = summary["servers"]
    defaults, best = servers.get("smlocal defaults"), servers.get("smlocal best")
    aws_best = servers.get("AWS best")
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, met: bool | None, unit: str) -> None:
        out.append({"figure": name, "value": value, "goal": goal, "met": met, "unit": unit})

    for label, server in (("defaults", defaults), ("best", best)):
        if server is None:
            continue
        if batched is not None and server["c16"]["rps"]:
            value = server["c16"]["rps"] / batched["sentences_per_s"]
            add(f"smlocal {label}, c16 req/s / in-process batched sentences/s", value,
                f">= {TARGET_C16_OF_BATCHED:.2f}", value >= TARGET_C16_OF_BATCHED, "x")
        if aws_best is not None and aws_best["c16"]["rps"]:
            value = server["c16"]["rps"] / aws_best["c16"]["rps"]
            add(f"smlocal {label}, c16 req/s / AWS best c16 req/s", value,
                f">= {TARGET_C16_OVER_AWS:.1f}", value >= TARGET_C16_OVER_AWS, "x")
        if single is not None and server["c1"]["p50_ms"] is not None:
            value = server["c1"]["p50_ms"] - single["p50_ms"]
            add(f"smlocal {label}, c1 p50 - in-process single call p50", value,
                f"<= +{TARGET_C1_OVERHEAD_MS:g} ms", value <= TARGET_C1_OVERHEAD_MS, "ms")
    if defaults is not None:
        memory = defaults["pss_mb"] if defaults["pss_mb"] is not None else defaults["rss_mb"]
        kind = "PSS" if defaults["pss_mb"] is not None else "RSS"
        add(f"smlocal defaults, {kind} of the server's processes", memory,
            f"<= {TARGET_MEMORY_MB:g} MB", memory <= TARGET_MEMORY_MB, "MB")
    return out


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_markdown(summary: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    lines = [
        f"{settings['rounds']} round(s), {settings['requests']} requests per level, "
        f"servers: {settings['server']}, AWS stack: {settings['reference']}, containers "
        f"reached at their {settings.get('container_address', 'published')} address; "
        "medians over the "
        "rounds. Generator CPU: the share of the machine's cores the load generator itself "
        "used at concurrency 16 (it shares them with the server; the in-process limits have "
        "no generator).",
        "",
        "| configuration | start -> first invocation (s) | c1 p50 ms | c4 req/s | c4 p99 ms "
        "| c16 req/s | c16 p99 ms | RSS MB | PSS MB | errors | generator CPU at c16 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in summary["in_process"].items():
        lines.append(f"| {name} | - | {_cell(figures['p50_ms'])} | - | - | "
                     f"{_cell(figures['sentences_per_s'])} sentences/s | - | - | - | - | - |")
    for name, figures in summary["servers"].items():
        lines.append(
            f"| {name} | {_cell(figures['start_s'], 2)} | {_cell(figures['c1']['p50_ms'])} | "
            f"{_cell(figures['c4']['rps'])} | {_cell(figures['c4']['p99_ms'])} | "
            f"{_cell(figures['c16']['rps'])} | {_cell(figures['c16']['p99_ms'])} | "
            f"{_cell(figures['rss_mb'], 0)} | {_cell(figures['pss_mb'], 0)} | "
            f"{figures['errors']} | {figures['c16']['generator_cpu_share']:.0%} |")
    lines += ["", "| target (issue 13) | this run | goal | met |", "|---|---:|---|---|"]
    for ratio in ratios(summary):
        value = ratio["value"]
        shown = (f"{value:+.2f} ms" if ratio["unit"] == "ms" else
                 f"{value:.0f} MB" if ratio["unit"] == "MB" else f"{value:.2f}x")
        lines.append(f"| {ratio['figure']} | {shown} | {ratio['goal']} | "
                     f"{'yes' if ratio['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def write_chart(summary: Mapping[str, Any], path: Path) -> None:
    """c16 throughput and c1 latency per server, against the in-process limits."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["servers"])
    single = summary["in_process"].get("in-process, 1 sentence per call")
    batched = summary["in_process"].get(f"in-process, {BATCH} sentences per call")
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.5))
    positions = range(len(names))
    for offset, concurrency in ((-0.2, 4), (0.2, 16)):
        throughput.bar([p + offset for p in positions],
                       [summary["servers"][n][f"c{concurrency}"]["rps"] for n in names],
                       width=0.4, label=f"concurrency {concurrency}")
    if batched is not None:
        throughput.axhline(batched["sentences_per_s"], color="black", linestyle="--",
                           label=f"in-process, {BATCH} per call")
    if single is not None:
        throughput.axhline(single["sentences_per_s"], color="grey", linestyle=":",
                           label="in-process, 1 per call")
    throughput.set_ylabel("sentences/s (one per request)")
    latency.bar(list(positions), [summary["servers"][n]["c1"]["p50_ms"] or 0 for n in names],
                width=0.5, color="tab:purple", label="server, concurrency 1 (p50)")
    if single is not None:
        latency.axhline(single["p50_ms"], color="grey", linestyle=":",
                        label="in-process, 1 per call (p50)")
    latency.set_ylabel("latency (ms)")
    for axes in (throughput, latency):
        axes.set_xticks(list(positions), names, rotation=15, fontsize=8)
        axes.legend(fontsize=8)
        axes.grid(True, axis="y", alpha=0.3)
    figure.suptitle("serving side by side (medians over the rounds)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the run ----------------------------------------------------------------------------------


def level_text(level: LevelStats) -> str:
    p99 = level.latency_ms.p99 if level.latency_ms is not None else None
    errors = sum(level.errors.values())
    return (f"c{level.concurrency} {level.throughput_rps:.1f} req/s p99 {_cell(p99)} ms"
            + (f" ({errors} errors)" if errors else ""))


def _environ(pairs: Sequence[str], default: Mapping[str, str]) -> dict[str, str]:
    if not pairs:
        return dict(default)
    environ: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {pair!r}")
        environ[key] = value
    return environ


def configurations(args: argparse.Namespace) -> list[ServerConfiguration]:
    found = [ServerConfiguration("smlocal defaults", "smlocal"),
             ServerConfiguration("smlocal best", "smlocal",
                                 _environ(args.smlocal_best, SMLOCAL_BEST))]
    if args.reference != "none":
        found += [ServerConfiguration("AWS defaults", "aws"),
                  ServerConfiguration("AWS best", "aws", _environ(args.aws_best, AWS_BEST))]
    return found


def reference_venv_problem(venv: Path) -> str | None:
    """Why the AWS stack cannot run from `venv`, or None."""
    python = venv / "bin" / "python"
    if not python.is_file():
        return (f"--reference-venv {venv}: no venv there (python3 -m venv {venv}; {venv}/bin/pip "
                "install sagemaker-pytorch-inference==2.0.25 torchserve==0.12.0 'setuptools<81')")
    probe = subprocess.run([str(python), "-c", "import sagemaker_pytorch_serving_container, "
                            "ts, torch, transformers"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"--reference-venv {venv} cannot import the stack or the handlers' needs: {last}"
    if shutil.which("java") is None or shutil.which("unshare") is None:
        return "--reference venv needs java (17) and unshare on PATH"
    return None


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=".smlocal/model", help="a trained classifier")
    parser.add_argument("--code", default="handlers", help="the handlers (served as code/)")
    parser.add_argument("--out", required=True, help="directory for serving.md/.png/.json")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="the load generator's HTTP client (raw: lean, see "
                        "harness.bench.rawhttp)")
    parser.add_argument("--server", choices=("container", "host"), default="container",
                        help="smlocal in a container of --image, or `smlocal serve` here")
    parser.add_argument("--image", default="smlocal:latest")
    parser.add_argument("--container-address", choices=("published", "bridge"),
                        default="published",
                        help="where the load goes for containers (smlocal's and the AWS "
                        "stack's): the port published on 127.0.0.1 (through Docker's userland "
                        "proxy), or the container's own address on its Docker network (the "
                        "server alone)")
    parser.add_argument("--reference", choices=("image", "venv", "none"), default="image",
                        help="the AWS stack: the reference image (`smlocal image build "
                        "--reference`), a venv with the toolkit and TorchServe, or none")
    parser.add_argument("--reference-image", default=REFERENCE_TAG)
    parser.add_argument("--reference-venv", default=DEFAULT_REFERENCE_VENV,
                        help="--reference venv: a venv with sagemaker-pytorch-inference==2.0.25, "
                        "torchserve==0.12.0, setuptools<81 and what the handlers import")
    parser.add_argument("--smlocal-best", action="append", default=[], metavar="KEY=VALUE",
                        help=f"smlocal's best configuration (default {SMLOCAL_BEST})")
    parser.add_argument("--aws-best", action="append", default=[], metavar="KEY=VALUE",
                        help=f"the AWS stack's best configuration (default {AWS_BEST})")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300, help="per concurrency level")
    parser.add_argument("--calls", type=int, default=200,
                        help="in-process calls per round and configuration")
    parser.add_argument("--sentences", help="a text file of sentences (default: 8 CoLA "
                        "sentences of several lengths)")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1..10")
    if not 1 <= args.requests <= 10_000:
        parser.error("--requests must be 1..10000")
    if not 1 <= args.calls <= 10_000:
        parser.error("--calls must be 1..10000")
    if not (Path(args.model_dir) / "config.json").is_file():
        parser.error(f"--model-dir {args.model_dir} holds no trained model (config.json); "
                     "`smlocal train` or `make demo` writes one")
    if not (Path(args.code) / "inference.py").is_file():
        parser.error(f"--code {args.code} has no inference.py")
    if args.reference == "venv":
        problem = reference_venv_problem(Path(args.reference_venv))
        if problem:
            parser.error(problem)
    needs_docker = args.server == "container" or args.reference == "image"
    if needs_docker:
        wanted = [args.image] if args.server == "container" else []
        wanted += [args.reference_image] if args.reference == "image" else []
        for image in wanted:
            probe = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                   check=False)
            if probe.returncode != 0:
                parser.error(f"image {image} is not there (smlocal image build"
                             f"{' --reference' if image == args.reference_image else ''})")
    try:
        _environ(args.smlocal_best, SMLOCAL_BEST)
        _environ(args.aws_best, AWS_BEST)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        # Without a file: CoLA sentences of several lengths, as the trace check uses.
        sentences = (read_sentences(Path(args.sentences)) if args.sentences
                     else list(COLA_SENTENCES))
    except WorkloadError as exc:
        print(f"serving: {exc}", file=sys.stderr)
        return 2
    requests = sentence_requests(sentences)
    servers = configurations(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import torch

    handlers = load_handlers(Path(args.code))
    model = handlers.model_fn(str(Path(args.model_dir)))
    call = in_process_call(handlers, model)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process; "
          f"{len(sentences)} sentences; {args.rounds} round(s) of: in-process x2, "
          f"{', '.join(s.name for s in servers)}", flush=True)

    in_process: list[InProcessRound] = []
    server_rounds: list[ServerRound] = []
    for number in range(1, args.rounds + 1):
        for name, per_call in (("in-process, 1 sentence per call", 1),
                               (f"in-process, {BATCH} sentences per call", BATCH)):
            calls = args.calls if per_call == 1 else max(1, args.calls // BATCH * 2)
            result = measure_in_process(name, call, sentences, per_call, calls)
            in_process.append(result)
            print(f"round {number}: {name}: p50 {result.p50_ms:.1f} ms per call, "
                  f"{result.sentences_per_s:.1f} sentences/s", flush=True)
        for configuration in servers:
            try:
                result_round = measure_server(configuration, args, requests)
            except ServerError as exc:
                print(f"serving: {configuration.name}: {exc}", file=sys.stderr)
                return 2
            server_rounds.append(result_round)
            levels = "; ".join(level_text(level) for level in result_round.levels.values())
            print(f"round {number}: {configuration.name}: first invocation after "
                  f"{result_round.start_s:.1f} s; {levels}; "
                  f"RSS {result_round.memory.rss_mb:.0f} MB", flush=True)

    summary = summarize(in_process, server_rounds)
    settings = {"rounds": args.rounds, "requests": args.requests, "calls": args.calls,
                "server": args.server, "image": args.image, "reference": args.reference,
                "container_address": args.container_address,
                "reference_image": args.reference_image,
                "configurations": [asdict(c) | {"environ": dict(c.environ)} for c in servers],
                "sentences": len(sentences), "torch_threads": torch.get_num_threads()}
    markdown = render_markdown(summary, settings)
    print()
    print(markdown)
    (out / "serving.md").write_text(markdown, encoding="utf-8")
    (out / "serving.json").write_text(json.dumps(
        {"settings": settings, "summary": summary, "targets": ratios(summary),
         "in_process_rounds": [asdict(r) | {"sentences_per_s": r.sentences_per_s}
                               for r in in_process],
         "server_rounds": [{"name": r.name, "start_s": r.start_s, "memory": asdict(r.memory),
                            "levels": {str(c): level.to_json() for c, level in r.levels.items()}}
                           for r in server_rounds]}, indent=2) + "\n", encoding="utf-8")
    write_chart(summary, out / "serving.png")
    print(f"written: {out / 'serving.md'}, {out / 'serving.png'}, {out / 'serving.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
