"""`smlocal`: the command line. Each subcommand's work lives in its own module; this one only
parses arguments and turns known failures into an exit code and a one-line cause."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.bench.parser import add_bench_parser
from harness.errors import CommandError

# Tests and the fastest loop run offline; set before anything imports transformers (E8).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EXIT_USAGE = 2


def _cmd_data_cola(args: argparse.Namespace) -> int:
    from harness.data.cola import OFFICIAL_URL, DataError, prepare_cola

    source = args.source or OFFICIAL_URL
    try:
        prepared = prepare_cola(source, Path(args.out), seed=args.seed)
    except DataError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    for split, count in prepared.counts.items():
        print(f"{prepared.path(split)}\t{count} rows")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from harness.train import run_process_training

    # A TrainError is a CommandError: it reaches main() with its own exit code.
    result = run_process_training(
        data_dir=Path(args.data),
        code_dir=Path(args.code),
        entry_point=args.entry_point,
        hyperparameters=dict(args.hyperparameter),
        work_dir=Path(args.work_dir) if args.work_dir else None,
        model_out=Path(args.model_out) if args.model_out else None,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
    )
    print(f"model:   {result.model_dir}")
    print(f"metrics: {result.metrics_file}")
    print(f"job:     {result.job_dir}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from harness.serving import serve_on_host

    return int(serve_on_host(
        model_dir=Path(args.model_dir),
        code_dir=Path(args.code) if args.code else None,
        host=args.host,
        port=args.port,
        reload=args.reload,
    ))


def _cmd_invoke(args: argparse.Namespace) -> int:
    from harness.serving import invoke

    return int(invoke(
        text=args.text,
        url=args.url,
        content_type=args.content_type,
        accept=args.accept,
    ))


def _cmd_image_build(args: argparse.Namespace) -> int:
    from harness.image import DEFAULT_TAG, build_image
    from harness.reference_image import REFERENCE_TAG, build_reference_image

    # An ImageError is a CommandError: it reaches main() with its own exit code.
    build = build_reference_image if args.reference else build_image
    tag = args.tag or (REFERENCE_TAG if args.reference else DEFAULT_TAG)
    result = build(tag=tag, base_image=args.base_image, quiet=not args.verbose)
    print(f"{result.tag}\t{result.size_bytes / 1e9:.2f} GB\ton {result.base_image}"
          f"\t{result.seconds:.1f} s")
    return 0


def _cmd_contract(args: argparse.Namespace) -> int:
    from harness.testing.command import ContractOptions, ContractUsageError, run_contract

    options = ContractOptions(
        target=args.target,
        compare=args.compare,
        image=args.image,
        reference_image=args.reference_image,
        env=tuple(args.env),
        cases=Path(args.cases) if args.cases else None,
        model_dir=Path(args.model_dir) if args.model_dir else None,
        code_dir=Path(args.code) if args.code else None,
        wait_s=args.wait,
        install_requirements=not args.no_requirements,
        region=args.region,
        verbose=args.verbose,
    )
    try:
        return run_contract(options, sys.stdout, sys.stderr)
    except ContractUsageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc


def _cmd_package(args: argparse.Namespace) -> int:
    from harness.package import PackageError, package_model

    try:
        packaged = package_model(Path(args.model_dir), Path(args.code), Path(args.output),
                                 entry_point=args.entry_point)
    except PackageError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from exc
    print(f"{packaged.path}\t{packaged.model_files} model files, {packaged.code_files} in "
          f"code/\t{packaged.size_bytes / 1e6:.1f} MB")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.testing.command import captured_server_log
    from harness.validate import ValidateUsageError, validate_archive

    with captured_server_log(args.verbose) as server_log:
        try:
            validation = validate_archive(
                Path(args.archive), entry_point=args.entry_point,
                cases=Path(args.cases) if args.cases else None,
                requirements=not args.no_requirements,
            )
        except ValidateUsageError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from exc
    print(validation.render())
    if any(finding.step == "model" and not finding.ok for finding in validation.findings):
        for record in server_log:
            print(record.getMessage(), file=sys.stderr)
    return 0 if validation.passed else 1


def _cmd_trace(args: argparse.Namespace) -> int:
    from harness.trace import TraceError, trace_and_package

    if not Path(args.model_dir).is_dir():
        raise CommandError(f"model directory {args.model_dir} not found", EXIT_USAGE)
    try:
        traced = trace_and_package(Path(args.model_dir), Path(args.out), max_len=args.max_len)
    except TraceError as exc:
        raise CommandError(str(exc)) from exc
    print(f"{traced.packaged.path}\t{traced.packaged.size_bytes / 1e6:.1f} MB\t"
          f"max abs diff traced vs eager {traced.max_abs_diff:.2e}")
    return 0


def _require_sdk_2x() -> None:
    """`local-mode` drives SDK 2.x's `PyTorch` estimator and `LocalSession`, which 3.x removed
    (local-mode.md); `down` and `predict` need no SDK."""
    from harness.sdk3.sdk_line import sdk_line_problem

    problem = sdk_line_problem(2)
    if problem is not None:
        raise CommandError(f"{problem}; SDK 3.x users: README, SDK 2.x and 3.x", EXIT_USAGE)


def _cmd_local_mode_fit(args: argparse.Namespace) -> int:
    _require_sdk_2x()
    from harness.local_mode.state import LastFit, save_last_fit
    from harness.local_mode.training import fit, read_metrics
    from harness.train import sdk_value

    root = Path(args.root)
    result = fit(
        Path(args.data),
        code_dir=Path(args.code),
        entry_point=args.entry_point,
        image=args.image,
        instance_count=args.instance_count,
        hyperparameters={key: sdk_value(value) for key, value in args.hyperparameter},
        root=root,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
    )
    save_last_fit(root, LastFit(job_name=result.job_name, model_data=str(result.model_data),
                                output_data=str(result.output_data)))
    print(f"job:        {result.job_name} ({result.instance_count} host(s), "
          f"{result.wall_s:.1f} s)")
    print(f"model:      {result.model_data}")
    print(f"output:     {result.output_data}")
    metrics = read_metrics(result.output_data) or {}
    for channel, scores in metrics.get("final", {}).items():
        print(f"{channel + ':':<12}accuracy {scores['accuracy']:.4f}  MCC {scores['mcc']:.4f}")
    return 0


def _deploy_command(args: argparse.Namespace, model_data: Path) -> list[str]:
    """The foreground deploy a detached one runs in the background."""
    command = [sys.executable, "-m", "harness.cli", "local-mode", "deploy",
               "--root", str(Path(args.root).resolve()), "--model-data", str(model_data.resolve()),
               "--code", str(Path(args.code).resolve()), "--entry-point", args.entry_point,
               "--image", args.image, "--port", str(args.port)]
    if args.accelerator_type:
        command += ["--accelerator-type", args.accelerator_type]
    return command


def _cmd_local_mode_deploy(args: argparse.Namespace) -> int:
    _require_sdk_2x()
    from harness.local_mode.detached import (
        LOG_FILE,
        recorded,
        refuse_if_running,
        start_detached,
        wait_for_termination,
    )
    from harness.local_mode.endpoint import deploy
    from harness.local_mode.errors import LocalModeError
    from harness.local_mode.state import EndpointRecord, load_last_fit

    root = Path(args.root)
    if args.model_data:
        model_data = Path(args.model_data)
    elif (last := load_last_fit(root)) is not None:
        model_data = Path(last.model_data)
    else:
        raise LocalModeError("no model: pass --model-data or run `smlocal local-mode fit` first",
                             EXIT_USAGE)
    if args.detach:
        record = start_detached(_deploy_command(args, model_data), root)
        print(f"endpoint {record.name} ready at http://127.0.0.1:{record.port} "
              f"(pid {record.pid}, log {root / LOG_FILE}); `smlocal local-mode down` deletes it")
        return 0
    refuse_if_running(root)
    endpoint = deploy(model_data, code_dir=Path(args.code), entry_point=args.entry_point,
                      image=args.image, port=args.port, accelerator_type=args.accelerator_type,
                      root=root / "endpoint")
    record = EndpointRecord(pid=os.getpid(), port=endpoint.port, name=endpoint.name)
    try:
        with recorded(root, record):
            print(f"endpoint {endpoint.name} ready at {endpoint.url} in "
                  f"{endpoint.deploy_s:.1f} s; Ctrl-C or `smlocal local-mode down` deletes it",
                  flush=True)
            wait_for_termination()
    finally:
        endpoint.delete()
    print(f"endpoint {endpoint.name} deleted", flush=True)
    return 0


def _cmd_local_mode_predict(args: argparse.Namespace) -> int:
    from harness.local_mode.endpoint import DEFAULT_PORT, predict_json
    from harness.local_mode.errors import LocalModeError
    from harness.local_mode.state import ENDPOINT_FILE, load_endpoint
    from harness.serving import describe_rows, logit_rows

    record = load_endpoint(Path(args.root) / ENDPOINT_FILE)
    port = args.port or (record.port if record else DEFAULT_PORT)
    # One sentence goes as the blog sends it (a JSON string), several as a JSON list.
    data = args.sentences[0] if len(args.sentences) == 1 else args.sentences
    result = predict_json(data, port=port, root=Path(args.root) / "predict")
    rows = logit_rows(result)
    if rows is None:
        raise LocalModeError(f"the endpoint answered {json.dumps(result)[:300]}, not a list of "
                             "logit rows (the local SDK client ignores HTTP status codes, L7)")
    for line in describe_rows(rows):
        print(line)
    return 0


def _cmd_local_mode_down(args: argparse.Namespace) -> int:
    from harness.local_mode.cleanup import remove_everything
    from harness.local_mode.detached import stop_endpoint

    record = stop_endpoint(Path(args.root))
    if record is not None:
        print(f"endpoint {record.name} deleted (pid {record.pid})")
    removed = remove_everything()
    for name in removed.containers:
        print(f"container {name} removed")
    if removed.network:
        print("network sagemaker-local removed")
    return 0


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smlocal",
        description="Train, serve, invoke and contract-test SageMaker PyTorch handlers locally.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="prepare datasets").add_subparsers(
        dest="dataset", required=True, metavar="DATASET"
    )
    cola = data.add_parser("cola", help="CoLA as train/test/dev/ood CSV files")
    cola.add_argument("--source", help="path or URL of cola_public_1.1.zip "
                      "(default: the official CoLA address)")
    cola.add_argument("--out", default=".smlocal/data/cola", help="output directory")
    cola.add_argument("--seed", type=int, default=42, help="seed of the 75/25 train/test split")
    cola.set_defaults(handler=_cmd_data_cola)

    train = commands.add_parser(
        "train", help="run a training job in a local /opt/ml tree, without Docker"
    )
    train.add_argument("--data", default=".smlocal/data/cola",
                       help="directory with train.csv and test.csv (dev.csv, ood.csv optional)")
    train.add_argument("--code", default="handlers", help="source directory (the job's code)")
    train.add_argument("--entry-point", default="train.py")
    train.add_argument("-H", "--hyperparameter", action="append", type=_key_value, default=[],
                       metavar="KEY=VALUE", help="a hyperparameter for the script (repeatable)")
    train.add_argument("--work-dir", help="where the /opt/ml tree goes (default: a new one "
                       "under .smlocal/jobs)")
    train.add_argument("--model-out", help="copy the trained model here as well")
    train.add_argument("--checkpoint-dir", help="the job's /opt/ml/checkpoints, kept across "
                       "jobs: a job started again after a kill resumes from it")
    train.set_defaults(handler=_cmd_train)

    serve = commands.add_parser("serve", help="serve a model on this host, without Docker")
    serve.add_argument("--model-dir", required=True, help="the unpacked model (/opt/ml/model)")
    serve.add_argument("--code", help="handler directory (default: MODEL_DIR/code)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--reload", action="store_true",
                       help="reload the handler module when a file in --code changes")
    serve.set_defaults(handler=_cmd_serve)

    invoke = commands.add_parser("invoke", help="send a sentence to a running endpoint")
    invoke.add_argument("text", help="the sentence (a JSON string is sent)")
    invoke.add_argument("--url", default="http://127.0.0.1:8080")
    invoke.add_argument("--content-type", default="application/json")
    invoke.add_argument("--accept", default="application/json")
    invoke.set_defaults(handler=_cmd_invoke)

    contract = commands.add_parser(
        "contract", help="run the serving contract suite against handlers, a container or an "
        "endpoint")
    contract_target = contract.add_mutually_exclusive_group(required=True)
    contract_target.add_argument("--target", metavar="TARGET",
                                 help="asgi (in-process, needs --model-dir), http://HOST:PORT, "
                                 "or endpoint:NAME (boto3 credentials and region)")
    contract_target.add_argument("--compare", action="store_true",
                                 help="serve --model-dir with --code from the smlocal image and "
                                 "from the reference image (the AWS stack), run the suite on "
                                 "both and show where the answers differ; exit 1 on a "
                                 "difference docs/fidelity.md does not list")
    contract.add_argument("--image", default="smlocal:latest", help="--compare: our image")
    contract.add_argument("--reference-image", default="smlocal-reference:latest",
                          help="--compare: the AWS stack's image (smlocal image build "
                          "--reference)")
    contract.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
                          help="--compare: a serving setting for both containers (repeatable)")
    contract.add_argument("--cases", help="contract file (default: CODE/contract.yaml, else "
                          "handlers/contract.yaml)")
    contract.add_argument("--model-dir", help="asgi, --compare: the unpacked model "
                          "(/opt/ml/model)")
    contract.add_argument("--code", help="asgi, --compare: handler directory (default: "
                          "MODEL_DIR/code)")
    contract.add_argument("--wait", type=float, metavar="SECONDS",
                          help="http/endpoint: how long to wait for /ping 200 (default 30); "
                          "--compare: for both models to load (default 240)")
    contract.add_argument("--no-requirements", action="store_true",
                          help="asgi: do not pip-install CODE/requirements.txt first (S15)")
    contract.add_argument("--region", help="endpoint: AWS region (default: boto3's)")
    contract.add_argument("-v", "--verbose", action="store_true",
                          help="asgi: show the server log")
    contract.set_defaults(handler=_cmd_contract)

    package = commands.add_parser(
        "package", help="model.tar.gz as SageMaker's repack makes it (model + code/)")
    package.add_argument("--model-dir", required=True, help="the trained model's directory")
    package.add_argument("--code", default="handlers", help="handler directory, stored as code/")
    package.add_argument("-o", "--output", default="model.tar.gz")
    package.add_argument("--entry-point", default="inference.py",
                         help="SAGEMAKER_PROGRAM (must exist in --code)")
    package.set_defaults(handler=_cmd_package)

    validate = commands.add_parser(
        "validate", help="check that a model.tar.gz would serve on a SageMaker endpoint")
    validate.add_argument("archive", help="the model.tar.gz")
    validate.add_argument("--cases", help="contract file (default: code/contract.yaml in the "
                          "archive, else the built-in checks)")
    validate.add_argument("--entry-point", default="inference.py", help="SAGEMAKER_PROGRAM")
    validate.add_argument("--no-requirements", action="store_true",
                          help="skip the pip dry run of code/requirements.txt (S15)")
    validate.add_argument("-v", "--verbose", action="store_true", help="show the server log")
    validate.set_defaults(handler=_cmd_validate)

    trace = commands.add_parser(
        "trace", help="TorchScript model.tar.gz: trace, check against eager, package")
    trace.add_argument("--model-dir", required=True, help="the trained model's directory")
    trace.add_argument("--out", default="model.tar.gz", help="the archive to write")
    trace.add_argument("--max-len", type=int, default=64,
                       help="sequence length of the tracing example (default 64)")
    trace.set_defaults(handler=_cmd_trace)

    local_mode = commands.add_parser(
        "local-mode", help="SageMaker SDK local mode with the smlocal image (offline)"
    ).add_subparsers(dest="local_mode_command", required=True, metavar="STEP")
    root_help = "where jobs, endpoint files and state go"
    lm_fit = local_mode.add_parser("fit", help="PyTorch(...).fit() on 1 or more containers")
    lm_fit.add_argument("--data", default=".smlocal/data/cola",
                        help="prepared CSV files (`smlocal data cola`): one channel each")
    lm_fit.add_argument("--code", default="handlers", help="source_dir")
    lm_fit.add_argument("--entry-point", default="train.py")
    lm_fit.add_argument("--instance-count", type=int, default=1, help="hosts (containers)")
    lm_fit.add_argument("-H", "--hyperparameter", action="append", type=_key_value, default=[],
                        metavar="KEY=VALUE", help="added to the blog's epochs=1, num_labels=2, "
                        "backend=gloo (repeatable)")
    lm_fit.add_argument("--image", default="smlocal:latest", help="image_uri")
    lm_fit.add_argument("--checkpoint-dir", help="kept across jobs, shared by the hosts: "
                        "train.py checkpoints there and a job started again resumes from it")
    lm_fit.add_argument("--root", default=".smlocal/local-mode", help=root_help)
    lm_fit.set_defaults(handler=_cmd_local_mode_fit)

    lm_deploy = local_mode.add_parser(
        "deploy", help="deploy() a model; serves until Ctrl-C, or in the background with --detach"
    )
    lm_deploy.add_argument("--model-data", help="model.tar.gz (default: the last fit's)")
    lm_deploy.add_argument("--code", default="handlers", help="source_dir")
    lm_deploy.add_argument("--entry-point", default="inference.py")
    lm_deploy.add_argument("--image", default="smlocal:latest", help="image_uri")
    lm_deploy.add_argument("--port", type=int, default=8080, help="host port (all interfaces)")
    lm_deploy.add_argument("--accelerator-type", help="local_sagemaker_notebook sets "
                           "SAGEMAKER_INFERENCE_ACCELERATOR_PRESENT=true (S28)")
    lm_deploy.add_argument("--detach", action="store_true",
                           help="return once ready; `down` deletes the endpoint")
    lm_deploy.add_argument("--root", default=".smlocal/local-mode", help=root_help)
    lm_deploy.set_defaults(handler=_cmd_local_mode_deploy)

    lm_predict = local_mode.add_parser(
        "predict", help="predictor.predict() with the JSON serializer and deserializer"
    )
    lm_predict.add_argument("sentences", nargs="+", metavar="SENTENCE")
    lm_predict.add_argument("--port", type=int, help="default: the detached endpoint's, or 8080")
    lm_predict.add_argument("--root", default=".smlocal/local-mode", help=root_help)
    lm_predict.set_defaults(handler=_cmd_local_mode_predict)

    lm_down = local_mode.add_parser(
        "down", help="delete the endpoint; remove local-mode containers and the network"
    )
    lm_down.add_argument("--root", default=".smlocal/local-mode", help=root_help)
    lm_down.set_defaults(handler=_cmd_local_mode_down)

    add_bench_parser(commands)

    from harness.cloud.cli import add_cloud_parser

    add_cloud_parser(commands)

    image = commands.add_parser("image", help="the smlocal Docker image").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    image_build = image.add_parser(
        "build", help="build the image offline (base image, wheelhouse, docker build)"
    )
    image_build.add_argument("--tag", help="default: smlocal:latest, or "
                             "smlocal-reference:latest with --reference")
    image_build.add_argument("--reference", action="store_true",
                             help="build the reference image instead: the AWS serving stack "
                             "(SageMaker PyTorch inference toolkit on TorchServe)")
    image_build.add_argument("--base-image", help="default: python:3.11-slim-bookworm if "
                             "present or pullable, else smlocal/base:bookworm made by debootstrap")
    image_build.add_argument("-v", "--verbose", action="store_true",
                             help="show docker build's output")
    image_build.set_defaults(handler=_cmd_image_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"smlocal {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"smlocal {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
