"""The encoder under HBGL and HPT: one adapter per family (identical copies in ``hbgl_hf/`` and ``hpt_hf/``).

The methods need three things from an encoder: input embeddings (``inputs_embeds``), control of the attention mask
between positions (a boolean ``[B, Q, K]`` "may attend" mask) and a way to mark label slots. Per family:

============  ===============================  =====================  ==================  ==============  =====
family        custom mask reaches attention    label slots            positions           HBGL KV cache   head
============  ===============================  =====================  ==================  ==============  =====
bert          4D as-is: bool (sdpa) / additive  token type 1           absolute ids        yes             MLM
              float (eager)
roberta,      as bert                          label-type vector (*)  absolute ids +      yes             MLM
xlm-roberta                                                           padding_idx + 1
electra       as bert                          token type 1           absolute ids        yes             MLM (+)
distilbert    as bert                          label-type vector (*)  absolute ids        no (uncached)   MLM
deberta-v2    bool, its own attention (eager   token type 1 if        relative positions  no (uncached)   MLM
(v2 and v3)   only); relative positions built  type_vocab_size >= 2,  from our position
              from our position ids            else (*)               ids (+ absolute)
modernbert    {full, sliding} dict: our mask,  label-type vector (*)  rotary position_ids no (uncached)   MLM
              and for sliding layers also
              abs(pos_q - pos_k) <= window
============  ===============================  =====================  ==================  ==============  =====

(*) a learned vector added to the label slots' input embeddings, initialised to zero (a departure from the
papers, which use segment 1). (+) ELECTRA discriminator checkpoints have no MLM head: a fresh transform.
"MLM": the checkpoint's pretrained LM-head transform and bias (a fresh transform where it has none), the
decoder tied to the word embeddings. Flash and flex attention take no arbitrary masks: they are refused.

BERT folders keep today's layout (a flat BERT config, the encoder under ``bert``); every other family is
recorded as ``encoder_config`` (the checkpoint's config) and held under ``encoder``.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers.activations import ACT2FN

logger = logging.getLogger(__name__)

# family -> (word-embedding path in the base model, takes token_type_ids, can cache keys/values, mask style)
FAMILIES: dict[str, tuple[str, bool, bool, str]] = {
    "bert": ("embeddings.word_embeddings", True, True, "bert"),
    "roberta": ("embeddings.word_embeddings", True, True, "bert"),
    "xlm-roberta": ("embeddings.word_embeddings", True, True, "bert"),
    "electra": ("embeddings.word_embeddings", True, True, "bert"),
    "distilbert": ("embeddings.word_embeddings", False, False, "bert"),
    "deberta-v2": ("embeddings.word_embeddings", True, False, "deberta"),
    "modernbert": ("embeddings.tok_embeddings", False, False, "modernbert"),
}
# the BERT field names the models read, mirrored from another family's config (informational for the rest)
MIRRORED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "initializer_range", "pad_token_id")


def check_family(model_type: str, where: str = "the encoder") -> str:
    """``model_type`` if supported, else a ValueError naming it and the supported families."""
    if model_type not in FAMILIES:
        raise ValueError(f"{where} is a {model_type!r} model: HBGL and HPT support the encoder families "
                         f"{sorted(FAMILIES)} (the backbone needs inputs_embeds, a custom attention mask and "
                         "position ids)")
    return model_type


def check_variant(family: str, encoder_config) -> None:
    """Refuse a family variant whose layers mix positions outside the attention mask."""
    if family == "deberta-v2" and (getattr(encoder_config, "conv_kernel_size", 0) or 0) > 0:
        raise ValueError("deberta-v2 with a convolution layer (conv_kernel_size > 0, e.g. deberta-v2-xlarge) mixes "
                         "neighbouring positions, so the label slots' masks cannot hold: not supported")


def family_of(config) -> str:
    """The encoder family of an HBGL/HPT config: ``"bert"`` for a flat BERT config (no ``encoder_config``)."""
    encoder = getattr(config, "encoder_config", None)
    return "bert" if not encoder else check_family(encoder.get("model_type"))


def position_offset(family: str, encoder_config) -> int:
    """Added to our 0-based position ids: RoBERTa/XLM-R count positions from ``padding_idx + 1``."""
    return encoder_config.pad_token_id + 1 if family in ("roberta", "xlm-roberta") else 0


def embedding_size(encoder_config) -> int:
    """Width of the word-embedding rows (ELECTRA/DeBERTa may project them to ``hidden_size``)."""
    return getattr(encoder_config, "embedding_size", None) or encoder_config.hidden_size


def has_token_types(family: str, encoder_config) -> bool:
    """Label slots can be token type 1 (the papers' segment 1)."""
    return FAMILIES[family][1] and (getattr(encoder_config, "type_vocab_size", 0) or 0) >= 2


def mirrored_settings(family: str, encoder_config, label_rows: int) -> dict:
    """Outer-config values for a non-BERT encoder: ``encoder_config`` (its vocabulary extended by ``label_rows``)
    plus the BERT-named fields the models read. ``max_position_embeddings`` is what the model can take (RoBERTa:
    minus its offset); ``hidden_act``/``layer_norm_eps`` describe the LM-head transform."""
    check_variant(family, encoder_config)
    nested = encoder_config.to_dict()
    nested["vocab_size"] = encoder_config.vocab_size + label_rows
    act, eps, _, _ = head_settings(family, nested)
    settings = {name: getattr(encoder_config, name) for name in MIRRORED}
    settings.update(
        encoder_config=nested, hidden_act=act, layer_norm_eps=eps,
        max_position_embeddings=encoder_config.max_position_embeddings - position_offset(family, encoder_config),
        type_vocab_size=getattr(encoder_config, "type_vocab_size", None) or 1,
        intermediate_size=getattr(encoder_config, "intermediate_size", None) or 4 * encoder_config.hidden_size,
        attention_probs_dropout_prob=float(getattr(encoder_config, "attention_probs_dropout_prob",
                                                   getattr(encoder_config, "attention_dropout", 0.1)) or 0.0),
        embedding_size=embedding_size(encoder_config),
    )
    return settings


def head_settings(family: str, nested: dict) -> tuple[str, float, bool, bool]:
    """The family's LM-head transform: activation, LayerNorm eps, dense bias, LayerNorm bias."""
    if family in ("roberta", "xlm-roberta", "electra"):
        return "gelu", nested.get("layer_norm_eps", 1e-12), True, True
    if family == "distilbert":
        return nested.get("activation", "gelu"), 1e-12, True, True
    if family == "modernbert":
        return (nested.get("classifier_activation", "gelu"), nested.get("norm_eps", 1e-5),
                nested.get("classifier_bias", False), nested.get("norm_bias", False))
    return nested.get("hidden_act", "gelu"), nested.get("layer_norm_eps", 1e-7), True, True  # deberta-v2


def build_encoder_config(config):
    """The family config of an HBGL/HPT config's ``encoder_config``."""
    from transformers import AutoConfig

    nested = dict(config.encoder_config)
    encoder_config = AutoConfig.for_model(nested.pop("model_type"), **nested)
    return encoder_config


def build_backbone(config) -> nn.Module:
    """A randomly initialised base model of ``config.encoder_config`` (weights come from a checkpoint later)."""
    from transformers import AutoModel

    family = family_of(config)
    encoder_config = build_encoder_config(config)
    check_variant(family, encoder_config)
    attn = "eager" if family == "deberta-v2" else (getattr(config, "_attn_implementation", None) or "sdpa")
    if attn not in ("eager", "sdpa"):
        raise ValueError(f"HBGL/HPT need 'eager' or 'sdpa' attention for their masks, got {attn!r}")
    extra = {"add_pooling_layer": False} if family in ("roberta", "xlm-roberta") else {}
    return AutoModel.from_config(encoder_config, attn_implementation=attn, **extra)


class PredictionTransform(nn.Module):
    """``dense -> activation -> LayerNorm``, ``[..., H] -> [..., E]``: a non-BERT family's LM-head transform."""

    def __init__(self, config) -> None:
        super().__init__()
        family = family_of(config)
        act, eps, dense_bias, norm_bias = head_settings(family, config.encoder_config)
        width = getattr(config, "embedding_size", None) or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, width, bias=dense_bias)
        self.transform_act_fn = ACT2FN[act]
        self.LayerNorm = nn.LayerNorm(width, eps=eps, bias=norm_bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden)))


# ---------------------------------------------------------------------------------------------- checkpoints
def load_checkpoint(name_or_path: str) -> tuple[str, nn.Module, dict, torch.Tensor]:
    """Load an encoder checkpoint with ``AutoModelForMaskedLM``; returns its family, the base model, the LM-head
    transform's state (BERT names: dense, LayerNorm) and the decoder bias ``[V]`` (zeros without a head).

    Raises a ValueError naming the family for an unsupported one, and a RuntimeError naming the family and the
    missing keys when the checkpoint lacks encoder weights (no silent random encoder)."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    config = AutoConfig.from_pretrained(name_or_path)
    family = check_family(config.model_type, f"{name_or_path}")
    mlm, info = AutoModelForMaskedLM.from_pretrained(name_or_path, output_loading_info=True)
    prefix = mlm.base_model_prefix + "."
    missing_encoder = [k for k in info["missing_keys"] if k.startswith(prefix)]
    if missing_encoder:
        raise RuntimeError(f"{name_or_path} is a {family!r} checkpoint but lacks encoder weights HBGL/HPT need: "
                           f"missing {missing_encoder[:8]}{' ...' if len(missing_encoder) > 8 else ''}; pass a "
                           "checkpoint saved from the full model")
    missing_head = [k for k in info["missing_keys"] if not k.startswith(prefix)]
    if missing_head:
        logger.info("%s has no pretrained LM head (%s): the head transform starts fresh", name_or_path, missing_head)
    base = mlm.base_model
    if family == "bert":
        head, bias = mlm.cls.predictions.transform, mlm.cls.predictions.bias
        return family, base, head.state_dict(), bias.detach()
    if family in ("roberta", "xlm-roberta"):
        head, bias = mlm.lm_head, mlm.lm_head.bias
        parts = {"dense": head.dense, "LayerNorm": head.layer_norm}
    elif family == "electra":
        head, bias = mlm.generator_predictions, mlm.generator_lm_head.bias
        parts = {"dense": head.dense, "LayerNorm": head.LayerNorm}
    elif family == "distilbert":
        parts, bias = {"dense": mlm.vocab_transform, "LayerNorm": mlm.vocab_layer_norm}, mlm.vocab_projector.bias
    elif family == "modernbert":
        parts, bias = {"dense": mlm.head.dense, "LayerNorm": mlm.head.norm}, mlm.decoder.bias
    else:  # deberta-v2: the legacy (BERT-like) or the current head
        head = mlm.cls.predictions if getattr(mlm.config, "legacy", True) else mlm.lm_predictions.lm_head
        transform = head.transform if hasattr(head, "transform") else head
        parts, bias = {"dense": transform.dense, "LayerNorm": transform.LayerNorm}, head.bias
    state = {f"{name}.{k}": v for name, module in parts.items() for k, v in module.state_dict().items()}
    if bias is None:
        bias = torch.zeros(config.vocab_size)
    return family, base, state, bias.detach()


def word_embeddings(backbone: nn.Module, family: str) -> nn.Embedding:
    module = backbone
    for name in FAMILIES[family][0].split("."):
        module = getattr(module, name)
    return module


def copy_encoder_weights(target: nn.Module, source: nn.Module, family: str, name_or_path: str) -> None:
    """Copy every weight of ``source`` (the checkpoint's base model) but the word embeddings into ``target``;
    raises naming the family and the keys when they do not fit."""
    word = FAMILIES[family][0] + ".weight"
    state = {k: v for k, v in source.state_dict().items() if k != word}
    result = target.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k != word]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"{name_or_path} ({family!r}) does not fit its encoder: missing {missing}, "
                           f"unexpected {result.unexpected_keys}")


# ---------------------------------------------------------------------------------------------- running
def to_backend_mask(mask: torch.Tensor, attn_implementation: str | None, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``[B, Q, K]`` (or ``[Q, K]``) -> ``[B, 1, Q, K]``: bool for sdpa, additive float (0 /
    ``finfo(dtype).min``, in the hidden-state dtype) for eager. A bool mask under eager attention would be silently
    wrong (hf-notes §4.4)."""
    if mask.dim() == 2:
        mask = mask[None]
    mask = mask[:, None]
    if attn_implementation in (None, "sdpa"):
        return mask
    if attn_implementation == "eager":
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)
    raise ValueError(f"HBGL/HPT need 'eager' or 'sdpa' attention for their custom masks, got {attn_implementation!r}")


def sync_attention(backbone: nn.Module, family: str, attn_implementation: str | None) -> None:
    """Keep the backbone's attention implementation in step with the outer model's (``eager``/``sdpa``; DeBERTa has
    only its own); anything else is refused, as flash/flex attention take no arbitrary masks."""
    if family == "deberta-v2" or attn_implementation is None:
        return
    if attn_implementation not in ("eager", "sdpa"):
        raise ValueError(f"HBGL/HPT need 'eager' or 'sdpa' attention for their masks, got {attn_implementation!r}")
    if backbone.config._attn_implementation != attn_implementation:
        backbone.config._attn_implementation = attn_implementation


def deberta_relative_positions(backbone: nn.Module, positions: torch.Tensor) -> torch.Tensor:
    """``[B, S]`` position ids -> ``[1, B * heads, S, S]`` relative positions ``p_q - p_k`` (log-bucketed as the
    model does), the layout DeBERTa-v2's disentangled attention indexes per (example, head) row."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

    encoder, config = backbone.encoder, backbone.config
    relative = positions[:, :, None] - positions[:, None, :]
    if encoder.position_buckets > 0 and encoder.max_relative_positions > 0:
        relative = make_log_bucket_position(relative, encoder.position_buckets, encoder.max_relative_positions)
    relative = relative.long()
    b, s, _ = relative.shape
    return relative[:, None].expand(b, config.num_attention_heads, s, s).reshape(1, -1, s, s)


def with_label_type(embeds: torch.Tensor, types: torch.Tensor, label_type: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mark label slots (``types > 0``) for an encoder without a second segment: ``label_type`` ``[E]`` is added to
    their ``embeds`` ``[B, Q, E]`` and every type becomes 0. Unchanged when ``label_type`` is ``None``."""
    if label_type is None:
        return embeds, types
    return embeds + ((types > 0).unsqueeze(-1) * label_type).to(embeds.dtype), torch.zeros_like(types)


def run_encoder(backbone: nn.Module, family: str, embeds: torch.Tensor, positions: torch.Tensor,
                types: torch.Tensor, mask: torch.Tensor | None, label_type: torch.Tensor | None = None,
                cache=None, padding_mask: torch.Tensor | None = None, attn_implementation: str | None = None
                ) -> torch.Tensor:
    """Run a non-BERT ``backbone`` on ``embeds`` ``[B, Q, E]`` with 0-based ``positions`` ``[B, Q]``, ``types``
    ``[B, Q]`` (> 0 on label slots) and a boolean ``[B, Q, K]`` ``mask`` (or a ``[B, K]`` ``padding_mask``: the
    family's own mask path); ``label_type`` ``[E]`` is added on the label slots of families without token types.
    Returns ``[B, Q, H]``."""
    config = backbone.config
    embeds, types = with_label_type(embeds, types, label_type)
    positions = positions + position_offset(family, config)
    attn = attn_implementation or config._attn_implementation
    style = FAMILIES[family][3]
    if style == "deberta":
        mask = padding_mask if padding_mask is not None else mask[:, None]
        hidden = backbone.embeddings(token_type_ids=types, position_ids=positions, inputs_embeds=embeds)
        relative = deberta_relative_positions(backbone, positions) if backbone.encoder.relative_attention else None
        return backbone.encoder(hidden, mask, output_hidden_states=False, relative_pos=relative).last_hidden_state
    sync_attention(backbone, family, attn)
    if padding_mask is not None:
        backend = padding_mask
    elif style == "modernbert":
        near = (positions[:, :, None] - positions[:, None, :]).abs() <= config.sliding_window
        backend = {"full_attention": to_backend_mask(mask, attn, embeds.dtype),
                   "sliding_attention": to_backend_mask(mask & near, attn, embeds.dtype)}
    else:
        backend = to_backend_mask(mask, attn, embeds.dtype)
    kwargs = {"token_type_ids": types} if FAMILIES[family][1] else {}
    if cache is not None:
        kwargs.update(past_key_values=cache, use_cache=True)
    return backbone(inputs_embeds=embeds, position_ids=positions, attention_mask=backend, **kwargs).last_hidden_state
