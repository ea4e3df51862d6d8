"""SDK 3.x `ModelBuilder(mode=Mode.LOCAL_CONTAINER)` with the smlocal image (issue 12; S1, S2,
S8): build -> deploy -> invoke the blog's sentence -> delete, offline, with the real SDK and
Docker engine, and nothing left behind (harness.sdk3.serving says what 3.x needs and why).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import docker
from harness.local_mode.cleanup import containers_under
from harness.sdk3.serving import BLOG_SENTENCE, deploy_local, stage_model
from harness.testing.network_guard import NetworkGuard

pytestmark = [pytest.mark.sdk(3), pytest.mark.docker]


def test_S1_model_builder_deploys_the_image_and_answers_the_blog_sentence_offline(
        smlocal_image: str, bert_model_dir: Path, handlers_dir: Path, tmp_path: Path,
        nothing_left, eager_logits) -> None:
    model_dir = stage_model(bert_model_dir, handlers_dir, tmp_path / "model")
    engine = docker.from_env()
    before = {c.id for c in engine.containers.list(all=True)}
    with NetworkGuard() as guard, deploy_local(model_dir, image=smlocal_image,
                                               root=tmp_path / "sdk3") as deployed:
        answer = deployed.invoke([BLOG_SENTENCE])
        # The SDK names no container: ours are the new ones that mount the model directory.
        ours = [c for c in engine.containers.list(all=True) if c.id not in before
                and any(m["Source"].startswith(str(tmp_path)) for m in c.attrs["Mounts"])]
        assert [c.attrs["Config"]["Cmd"] for c in ours] == [["serve"]]
    guard.assert_offline()
    assert len(answer) == 1 and len(answer[0]) == 2
    expected = eager_logits(bert_model_dir, [BLOG_SENTENCE])[0]
    assert all(math.isclose(a, b, abs_tol=1e-4) for a, b in zip(answer[0], expected, strict=True))
    # Both copies the SDK started are gone (harness.sdk3.serving), and the network if unused.
    leftovers = {c.id for c in engine.containers.list(all=True)} & {c.id for c in ours}
    assert leftovers == set()
    # The SDK's second copy (2.x's local session, same port): started, and removed too.
    assert deployed.sdk_copy_root is not None
    assert containers_under(deployed.sdk_copy_root) == []
    nothing_left(tmp_path)
