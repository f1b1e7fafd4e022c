"""Fine-tuning job bodies, read before a byte leaves: the real openai and cohere SDKs against a loopback server.

A job's body was not read on OpenAI's API, on Azure OpenAI nor on Cohere's: a Weights & Biases integration (the
vendor reporting the run to a third party, on Cohere with a W&B API key), a reinforcement grader run at the vendor,
any field an app put in ``extra_body``, was sent, and the model tuned was never judged. Each is now refused before
the SDK sends anything; a plain job is sent, judged for the model it tunes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cohere.finetuning.finetuning.types import BaseModel, FinetunedModel, Settings, WandbConfig

import privsdk
import privsdk.cohere
from privsdk import openai as dropin
from tests.wire.server import LoopbackServer, Recorded, Reply, json_reply

KEY = "sk-loopback"
SECRET = "SECRET-7f3e"  # a value no refusal may repeat


def _jobs(request: Recorded) -> Reply:
    """A fine-tuning job's creation answered as OpenAI (and Azure OpenAI) and Cohere answer it."""
    body = request.json()
    if request.path in ("/v1/fine_tuning/jobs", "/openai/fine_tuning/jobs"):
        job = {"id": "ftjob-1", "object": "fine_tuning.job", "model": body["model"], "status": "queued"}
        return json_reply(job | {"created_at": 1, "training_file": body["training_file"], "seed": 1})
    if request.path == "/v1/finetuning/finetuned-models":
        return json_reply({"finetuned_model": {"id": "ft-1", "name": body["name"], "settings": body["settings"]}})
    raise ValueError(f"no route {request.path}")


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """The jobs stand-in, under a policy that allows fine-tuning: no training, Cohere's paid plan opted out of it."""
    with LoopbackServer(_jobs) as server:
        monkeypatch.setenv("PRIVSDK_USAGE", "none")
        monkeypatch.setenv("PRIVSDK_REQUIRE", "no_training")
        monkeypatch.setenv("PRIVSDK_ATTEST", "cohere:plan=paid,cohere:training_opt_out")
        yield server
    assert server.errors == []


_GRADER = {"type": "python", "name": "g", "source": f"def grade(sample, item): return '{SECRET}'"}
#: (what the refusal names, the job's fields beyond model and training file)
OPENAI_REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("integrations", {"integrations": [{"type": "wandb", "wandb": {"project": SECRET, "entity": SECRET}}]}),
    ("reinforcement", {"method": {"type": "reinforcement", "reinforcement": {"grader": _GRADER}}}),
    ("zz_new_field", {"extra_body": {"zz_new_field": {"x": SECRET}}}),
    ("method: reinforcement", {"method": {"type": "supervised", "reinforcement": {"grader": _GRADER}}}),
    ("hyperparameters: zz_new", {"hyperparameters": {"n_epochs": 1, "zz_new": SECRET}}),
]


@pytest.mark.parametrize("offering", ["openai.api", "azure.openai"])
def test_an_openai_fine_tuning_job_is_read_and_what_privsdk_does_not_judge_sends_nothing(
    jobs: LoopbackServer, monkeypatch: pytest.MonkeyPatch, offering: str
) -> None:
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{jobs.url}={offering}")
    if offering == "azure.openai":
        client: Any = dropin.AzureOpenAI(
            api_key=KEY, api_version="2025-04-01-preview", azure_endpoint=jobs.url, max_retries=0
        )
        model, path = "gpt-4o-mini-2024-07-18", "/openai/fine_tuning/jobs"
    else:
        client = dropin.OpenAI(api_key=KEY, base_url=f"{jobs.url}/v1", max_retries=0)
        model, path = "gpt-4o-mini", "/v1/fine_tuning/jobs"
    for says, fields in OPENAI_REFUSED:
        with pytest.raises(privsdk.PolicyViolation) as caught:
            client.fine_tuning.jobs.create(model=model, training_file="file-1", **fields)
        assert says in str(caught.value) and SECRET not in str(caught.value)
    assert jobs.requests == []
    # The model tuned is judged: one the offering does not serve is refused as a direct call to it is.
    with pytest.raises(privsdk.PolicyViolation):
        client.fine_tuning.jobs.create(model="claude-3-haiku", training_file="file-1")
    assert jobs.requests == []
    method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": "auto"}}}
    job = client.fine_tuning.jobs.create(model=model, training_file="file-1", method=method, suffix="s", seed=7)
    assert job.id == "ftjob-1"
    assert [(r.path, r.json()["model"]) for r in jobs.requests] == [(path, model)]


def _settings(**fields: Any) -> Settings:
    """A tuning of command-r with ``fields`` (the SDK's models take fields of their own: ``extra="allow"``)."""
    base = BaseModel(base_type="BASE_TYPE_CHAT", name="command-r-08-2024")
    return Settings(base_model=base, dataset_id="ds-1", **fields)


def test_a_cohere_fine_tuned_model_is_read_and_what_privsdk_does_not_judge_sends_nothing(
    jobs: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVSDK_ENDPOINTS", f"{jobs.url}=cohere.saas")
    co = privsdk.cohere.ClientV2(api_key=KEY, base_url=jobs.url, max_retries=0)
    create = co.finetuning.create_finetuned_model
    unnamed = Settings(base_model=BaseModel(base_type="BASE_TYPE_CHAT"), dataset_id="ds-1")
    wandb = WandbConfig(project=SECRET, api_key=SECRET, entity=SECRET)
    extra: dict[str, Any] = {"zz_new_field": {"x": SECRET}}  # the SDK's models take fields of their own
    refused: list[tuple[str, FinetunedModel]] = [
        ("settings.wandb", FinetunedModel(name="m", settings=_settings(wandb=wandb))),
        ("zz_new_field", FinetunedModel(name="m", settings=_settings(), **extra)),
        ("settings: zz_new_field", FinetunedModel(name="m", settings=_settings(zz_new_field=SECRET))),
        ("names no model", FinetunedModel(name="m", settings=unnamed)),
    ]
    for says, request in refused:
        with pytest.raises(privsdk.PolicyViolation) as caught:
            create(request=request)
        assert says in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(privsdk.PolicyViolation) as caught:  # an update sends settings too
        co.finetuning.update_finetuned_model("ft-1", name="m", settings=_settings(wandb=wandb))
    assert "settings.wandb" in str(caught.value) and SECRET not in str(caught.value)
    assert jobs.requests == []
    created = create(request=FinetunedModel(name="support-bot", settings=_settings(wandb=None)))
    assert created.finetuned_model is not None and created.finetuned_model.id == "ft-1"
    assert [r.json()["settings"]["base_model"]["name"] for r in jobs.requests] == ["command-r-08-2024"]
