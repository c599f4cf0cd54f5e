"""Inputs that used to give silent wrong results (issue #16): left padding, an edited config.json, labels other
than 0/1, empty batches, and training that must repeat bit for bit from the same seed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import TINY_BASE_VOCAB, TOY_TAXONOMY, padded_batch
from safetensors.torch import load_file

from hbgl_hf import HBGLConfig, HBGLForHierarchicalClassification
from hbgl_hf.modeling_hbgl import right_align_padding as hbgl_right_align_padding
from hpt_hf import HPTConfig, HPTForHierarchicalClassification
from hpt_hf.template import right_align_padding as hpt_right_align_padding
from htc_tools.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parents[1]
MODEL_TYPES = ["hbgl", "hpt"]
MODEL_CLASSES = {"hbgl": HBGLForHierarchicalClassification, "hpt": HPTForHierarchicalClassification}
# depth 4, a multi-parent label ("x" under "a1" and "b1"), paths that end early
DEPTH4 = Taxonomy.from_dict({
    "Root": ["a", "b", "c"], "a": ["a1", "a2"], "b": ["b1"], "a1": ["a11", "x"], "b1": ["x", "b12"],
    "a11": ["a111"], "x": ["x1"],
})


def tiny(model_type: str, tax: Taxonomy = DEPTH4,
         **overrides: object) -> HBGLForHierarchicalClassification | HPTForHierarchicalClassification:
    """A tiny HBGL or HPT on raw ids (word ids < TINY_BASE_VOCAB; [CLS]=2, [SEP]=3, [MASK]=4)."""
    common = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
              "max_position_embeddings": 48, "id2label": dict(enumerate(tax.labels)),
              "label_parents": [list(p) for p in tax.parents], "label_token_offset": TINY_BASE_VOCAB,
              "cls_token_id": 2, "sep_token_id": 3, "mask_token_id": 4, **overrides}
    torch.manual_seed(0)
    if model_type == "hbgl":
        return HBGLForHierarchicalClassification(HBGLConfig(vocab_size=TINY_BASE_VOCAB + tax.num_labels, **common))
    return HPTForHierarchicalClassification(
        HPTConfig(vocab_size=TINY_BASE_VOCAB + tax.num_labels + tax.depth + 1, **common))


def gold(tax: Taxonomy, *leaf_sets: list[str]) -> torch.Tensor:
    """Ancestor-closed multi-hot rows ``[B, L]``."""
    y = torch.zeros(len(leaf_sets), tax.num_labels)
    for row, leaves in enumerate(leaf_sets):
        y[row, sorted(tax.ancestor_closure([tax.id(n) for n in leaves]))] = 1
    return y


# ------------------------------------------------------------------ left padding
def to_left_padding(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The same rows with their padding in front (as a tokenizer with ``padding_side="left"`` writes them)."""
    left_ids, left_mask = torch.zeros_like(ids), torch.zeros_like(mask)
    width = ids.shape[1]
    for row, n in enumerate(mask.sum(-1).tolist()):
        left_ids[row, width - n :], left_mask[row, width - n :] = ids[row, :n], 1
    return left_ids, left_mask


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_left_padding_gives_the_outputs_of_right_padding(model_type: str) -> None:
    model = tiny(model_type).eval()
    ids, mask = padded_batch([9, 4, 46, 6])  # 46: longer than both models' max_text_length, so it is cut
    left_ids, left_mask = to_left_padding(ids, mask)
    assert not torch.equal(left_mask, mask)
    labels = gold(DEPTH4, ["a111"], ["x1"], ["c"], ["a2", "b12"])
    for kwargs in ({}, {"labels": labels}):
        right, left = model(ids, mask, **kwargs), model(left_ids, left_mask, **kwargs)
        assert torch.equal(left.logits, right.logits)
        assert (left.loss is None and right.loss is None) or torch.equal(left.loss, right.loss)
    decode_options = [{"use_cache": True}, {"use_cache": False}] if model_type == "hbgl" else [{}]
    for options in decode_options:
        right, left = model.decode(ids, mask, **options), model.decode(left_ids, left_mask, **options)
        for key in ("probabilities", "selected", "logits"):
            assert torch.equal(left[key], right[key]), (key, options)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_left_padding_from_the_tokenizer(model_type: str, tiny_encoder_dir: Path, tokenizer) -> None:
    """The user's case: the same texts through a tokenizer with ``padding_side="left"``."""
    taxonomy = Taxonomy.from_dict(TOY_TAXONOMY)
    model = MODEL_CLASSES[model_type].from_encoder(str(tiny_encoder_dir), list(taxonomy.labels),
                                                   [list(p) for p in taxonomy.parents], tokenizer=tokenizer).eval()
    texts = ["the team won the ball game in the match", "a gene", "the band and the song about the film"]
    right = tokenizer(texts, padding=True, return_tensors="pt")
    tokenizer.padding_side = "left"
    try:
        left = tokenizer(texts, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = "right"
    assert left["attention_mask"][:, 0].tolist() == [1, 0, 0]
    expected, got = model.decode(**right), model.decode(**left)
    assert torch.equal(got.logits, expected.logits) and torch.equal(got.selected, expected.selected)


def test_right_align_padding_copies_agree() -> None:
    """hbgl_hf and hpt_hf each carry the helper (shipped packages are self-contained): both move left padding
    to the right, carry the token types along, and leave right-padded rows (and a row without tokens) alone."""
    ids, mask = padded_batch([7, 3, 7, 1, 5])
    ids, mask = torch.cat([ids, torch.zeros_like(ids[:1])]), torch.cat([mask, torch.zeros_like(mask[:1])])
    left_ids, left_mask = to_left_padding(ids, mask)
    for helper in (hbgl_right_align_padding, hpt_right_align_padding):
        for rows in ((ids, mask), (left_ids, left_mask)):
            got_ids, got_mask, got_types = helper(*rows, rows[0] % 2)
            assert torch.equal(got_ids, ids) and torch.equal(got_mask, mask) and torch.equal(got_types, ids % 2)
        assert helper(left_ids, left_mask)[2] is None


# ------------------------------------------------------------------ an edited config.json
def saved_model(model_type: str, folder: Path) -> Path:
    tiny(model_type).save_pretrained(folder)
    return folder


def edit_config(folder: Path, edit: Callable[[dict], None]) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def remove_leaf(config: dict, name: str) -> None:
    """Delete one leaf label and renumber the later ids, as a user trimming the taxonomy would."""
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    removed = labels.index(name)
    del labels[removed], config["label_parents"][removed]
    config["label_parents"] = [[p - (p > removed) for p in parents] for parents in config["label_parents"]]
    config["id2label"] = {str(i): n for i, n in enumerate(labels)}
    config["label2id"] = {n: i for i, n in enumerate(labels)}


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_config_with_a_label_removed_is_rejected(model_type: str, tmp_path: Path) -> None:
    folder = saved_model(model_type, tmp_path / "model")
    edit_config(folder, lambda config: remove_leaf(config, "a2"))  # every later label row would shift by one
    with pytest.raises(ValueError, match=r"vocab_size must be label_token_offset \+ labels"):
        MODEL_CLASSES[model_type].from_pretrained(folder)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize(("parent", "message"), [
    (-1, r"label 7 \('x'\) has parent id -1: .*a top-level label has no parents \(\[\]\)"),
    (8, r"label 7 \('x'\) has a parent with an id >= its own \(8\)"),
    ("3", r"label 7 \('x'\) has parent id '3' \(str\): parent ids must be integers"),
    (3.0, r"label 7 \('x'\) has parent id 3.0 \(float\): parent ids must be integers"),
])
def test_config_with_a_bad_parent_id_is_rejected(model_type: str, parent: object, message: str,
                                                 tmp_path: Path) -> None:
    folder = saved_model(model_type, tmp_path / "model")
    edit_config(folder, lambda config: config["label_parents"].__setitem__(7, [3, parent]))
    with pytest.raises(ValueError, match=message):
        MODEL_CLASSES[model_type].from_pretrained(folder)


@pytest.mark.parametrize("config_class", [HBGLConfig, HPTConfig])
def test_config_checks_label_ids_and_parent_lists(config_class: type) -> None:
    with pytest.raises(ValueError, match=r"id2label must map the ids 0 \.\. 1"):
        config_class(id2label={0: "a", 2: "b"}, label_parents=[[], [0]])
    with pytest.raises(ValueError, match=r"label 1 \('b'\) has parents 0 \(int\): .* a list of parent ids"):
        config_class(id2label={0: "a", 1: "b"}, label_parents=[[], 0])
    assert config_class(id2label={0: "a", 1: "b"}, label_parents=[[], [0]]).label_levels == [1, 2]


# ------------------------------------------------------------------ labels and empty batches
@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("bad", [float("nan"), 2.0, -1.0, 0.5])
def test_labels_other_than_0_and_1_are_rejected(model_type: str, bad: float) -> None:
    model = tiny(model_type).train()
    ids, mask = padded_batch([6, 5])
    labels = gold(DEPTH4, ["a111"], ["b12"])
    labels[1, 3] = bad
    with pytest.raises(ValueError, match=rf"labels must be 0 or 1.* row 1 holds {bad} for label 3 \('a1'\)"):
        model(ids, mask, labels=labels)
    model.eval()
    reference = model(ids, mask, labels=gold(DEPTH4, ["a111"], ["b12"]))
    for dtype in (torch.long, torch.bool):  # integer and boolean multi-hot rows are fine
        assert torch.equal(model(ids, mask, labels=gold(DEPTH4, ["a111"], ["b12"]).to(dtype)).loss, reference.loss)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_empty_batch_gives_empty_outputs(model_type: str) -> None:
    model = tiny(model_type)
    ids, mask = padded_batch([6])
    ids, mask, num_labels = ids[:0], mask[:0], DEPTH4.num_labels
    model.train()
    out = model(ids, mask, labels=torch.zeros(0, num_labels))
    assert out.logits.shape == (0, num_labels) and out.loss.item() == 0.0
    out.loss.backward()  # a training loop may call it: nothing to learn from, no error
    model.eval()
    assert model(ids, mask).logits.shape == (0, num_labels)
    decoded = model.decode(ids, mask)
    assert decoded.probabilities.shape == decoded.logits.shape == decoded.selected.shape == (0, num_labels)
    assert decoded.selected.dtype == torch.bool and decoded.probabilities.dtype == model.dtype


# ------------------------------------------------------------------ reproducible training through the run script
@pytest.fixture
def two_threads() -> Iterator[None]:
    """The race in a parallel CPU kernel needs more than one thread (the machine may run tests with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "flat"])
def test_training_twice_from_one_seed_is_bit_exact(model_type: str, tiny_encoder_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, two_threads: None) -> None:
    """The README main job (examples/demo.py) trains through ``run_hierarchical_classification.main`` in one
    process; dropout, HPT's MLM corruption and HBGL's target masking and label pre-training all stay on.
    Batches of 64 rows make HPT's prompt embeddings large enough for a multi-threaded CPU kernel."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    from run_hierarchical_classification import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "taxonomy.json").write_text(json.dumps(TOY_TAXONOMY))
    texts = ["the team won the ball game", "the molecule and the gene in the cell", "the band and the song",
             "energy of the atom in the lab", "a goal in the match", "the film about the actor"]
    leaves = ["ball", "biochem", "music", "chemistry", "ball", "arts"]
    rows = [{"text": f"{texts[i % 6]} {texts[(i * 5) % 6]}", "labels": [leaves[i % 6]]} for i in range(128)]
    for split in ("train", "dev"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    method = ["--label_pretraining_steps", "2"] if model_type == "hbgl" else []
    weights = []
    for run in ("first", "second"):
        main(["--model_type", model_type, "--model_name_or_path", str(tiny_encoder_dir), "--dataset_dir", str(data),
              "--output_dir", str(tmp_path / run), "--do_train", "--max_steps", "3", "--per_device_train_batch_size",
              "64", "--learning_rate", "1e-2", "--warmup_steps", "0.05", "--max_seq_length", "32", "--seed", "42",
              "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true", *method])
        weights.append(load_file(tmp_path / run / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    differ = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert not differ, differ


def test_per_package_copies_are_identical() -> None:
    """hbgl_hf and hpt_hf ship self-contained, so each carries these helpers; the copies must not drift apart."""
    import inspect

    from hbgl_hf import HBGLConfig, HBGLForHierarchicalClassification
    from hpt_hf import HPTConfig, HPTForHierarchicalClassification

    pairs = [(HBGLConfig._check_hierarchy, HPTConfig._check_hierarchy),
             (HBGLForHierarchicalClassification._check_labels, HPTForHierarchicalClassification._check_labels),
             (hbgl_right_align_padding, hpt_right_align_padding)]
    for hbgl_copy, hpt_copy in pairs:
        assert inspect.getsource(hbgl_copy) == inspect.getsource(hpt_copy), hbgl_copy.__qualname__
