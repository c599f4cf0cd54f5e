"""Issue #12, items 1-4 and 7: any dataset in (``--dataset_name``, split files), labels as datasets carry them
(names, paths, level columns, ClassLabel ids), the taxonomy inferred from the data with path identity, and the
``htc-train`` CLI module (``htc_tools.cli.train.main``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from hbgl_hf import HBGLConfig
from htc_tools.cli.train import main
from htc_tools.data import UnknownLabelsError
from htc_tools.data_files import DataFileError
from htc_tools.data_sources import load_raw_splits
from htc_tools.label_formats import LabelColumns, prepare_labelled_splits
from htc_tools.run_checks import parse_config_overrides
from htc_tools.taxonomy import AmbiguousLabelError, Taxonomy

REPO = Path(__file__).resolve().parents[1]
AMAZON_LEVELS = REPO.parent / "shared" / "datasets" / "amazon_hier_levels"
QUICK = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--max_seq_length", "16", "--report_to", "none",
         "--disable_tqdm", "true", "--use_cpu", "true", "--logging_strategy", "no",
         "--label_pretraining_steps", "0", "--save_strategy", "no"]
# the shape of amazon_hier_levels: 3 levels, paths ending at level 1, 2 or 3, "food" under three parents and
# "sauces" under two
SYNTH_PATHS = [("pet supplies", "dogs", "food"), ("pet supplies", "dogs", "toys"), ("pet supplies", "cats", "food"),
               ("pet supplies", "cats", "toys"), ("pet supplies", "birds", "food"), ("grocery", "pantry", "sauces"),
               ("grocery", "dips", "sauces"), ("grocery", "snacks"), ("baby products",)]
WORDS = "the ball game team score science atom lab music song band film movie vote law market".split()


def synthetic_rows(n: int, offset: int = 0) -> dict[str, list]:
    """``n`` rows in the columns of amazon_hier_levels: text, cat1..cat3 (None below a path's end), category_path."""
    rows: dict[str, list] = {"text": [], "cat1": [], "cat2": [], "cat3": [], "category_path": []}
    for i in range(offset, offset + n):
        path = SYNTH_PATHS[i % len(SYNTH_PATHS)]
        rows["text"].append(" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(6)))
        for level in range(3):
            rows[f"cat{level + 1}"].append(path[level] if level < len(path) else None)
        rows["category_path"].append(" > ".join(path))
    return rows


@pytest.fixture
def synthetic_levels_dir(tmp_path: Path) -> Path:
    """Parquet files train / validation / test shaped like ../shared/datasets/amazon_hier_levels."""
    folder = tmp_path / "levels"
    folder.mkdir()
    features = datasets.Features({c: datasets.Value("string") for c in ("text", "cat1", "cat2", "cat3",
                                                                          "category_path")})
    for split, n, offset in (("train", 27, 0), ("validation", 9, 3), ("test", 9, 5)):
        ds = datasets.Dataset.from_dict(synthetic_rows(n, offset), features=features)
        ds.to_parquet(folder / f"{split}.parquet")
    return folder


def _config_taxonomy(out: Path) -> tuple[list[str], list | None]:
    config = json.loads((out / "config.json").read_text())
    return [config["id2label"][str(i)] for i in range(len(config["id2label"]))], config.get("label_parents")


# ------------------------------------------------------------------ acceptance: level columns and path strings
@pytest.mark.parametrize("source", ["synthetic", "amazon_hier_levels"])
@pytest.mark.parametrize("model_type", ["hbgl", "hpt", "flat"])
def test_level_columns_and_path_strings_train_and_infer_the_same_taxonomy(
        source: str, model_type: str, synthetic_levels_dir: Path, tiny_encoder_dir: Path, tmp_path: Path) -> None:
    if source == "amazon_hier_levels" and not AMAZON_LEVELS.is_dir():
        pytest.skip(f"{AMAZON_LEVELS} is not present")
    data = synthetic_levels_dir if source == "synthetic" else AMAZON_LEVELS
    label_flags = {"levels": ["--label_level_columns", "cat1,cat2,cat3"],
                   "paths": ["--label_column_name", "category_path", "--label_path_separator", " > "]}
    inferred = {}
    for name, flags in label_flags.items():
        out = tmp_path / f"{model_type}-{name}"
        results = main(["--model_type", model_type, "--model_name_or_path", str(tiny_encoder_dir), "--dataset_name",
                        str(data), *flags, "--output_dir", str(out), "--do_train", "--do_eval",
                        "--max_train_samples", "16", "--max_eval_samples", "8", *QUICK])
        assert results["train_loss"] > 0 and "eval_micro_f1" in results
        inferred[name] = _config_taxonomy(out)
    assert inferred["levels"] == inferred["paths"]
    labels, parents = inferred["levels"]
    if source == "synthetic":
        expected = Taxonomy.from_paths(SYNTH_PATHS)
        assert labels == list(expected.labels) and len(labels) == 16
    else:
        assert len(labels) == 230
    taxonomy = Taxonomy.from_parents(labels, parents)  # the hierarchy is saved with every model, flat too
    assert sorted(n for n in labels if n == "food" or n.endswith("/food")) == ["birds/food", "cats/food", "dogs/food"]
    # each "food" sits under its own parent
    assert {taxonomy.display_name(taxonomy.id(f"{p}/food")) for p in ("birds", "cats", "dogs")} == {"food"}
    assert taxonomy.path_names(taxonomy.id("dogs/food"))[1:] == ["dogs", "food"]
    assert [taxonomy.labels[p] for p in taxonomy.parents[taxonomy.id("cats/food")]] == ["cats"]
    if model_type != "flat":  # the pipeline shows a path-identity label by its bare name, its path tells it apart
        from transformers import AutoModel, AutoTokenizer

        from htc_tools.hub import hierarchical_pipeline

        out = tmp_path / f"{model_type}-levels"
        pipe = hierarchical_pipeline(AutoModel.from_pretrained(out, trust_remote_code=True),
                                     AutoTokenizer.from_pretrained(out))
        shown = {tuple(r["path"]): r["label"] for r in pipe("dry food for dogs", return_all_scores=True)}
        foods = {path[:-1]: label for path, label in shown.items() if path[-1] == "food"}
        assert set(foods.values()) == {"food"} and {p[-1] for p in foods} == {"birds", "cats", "dogs"}
        assert len(shown) == len(labels) and not any("/" in label for label in shown.values())


def test_the_amazon_levels_folder_gives_230_labels_with_food_three_times() -> None:
    if not AMAZON_LEVELS.is_dir():
        pytest.skip(f"{AMAZON_LEVELS} is not present")
    raw = load_raw_splits(str(AMAZON_LEVELS))
    assert sorted(raw) == ["dev", "test", "train"]
    by_levels, taxonomy = prepare_labelled_splits(raw, LabelColumns(level_columns=("cat1", "cat2", "cat3")))
    by_paths, same = prepare_labelled_splits(raw, LabelColumns(label_column="category_path", path_separator=" > "))
    assert taxonomy == same and taxonomy.summary()["labels_per_level"] == [6, 54, 170]
    assert [taxonomy.display_name(i) for i in range(230)].count("food") == 3
    for split in raw:
        assert by_levels[split]["labels"] == by_paths[split]["labels"]


# ------------------------------------------------------------------ label formats
def _formats_dataset() -> datasets.DatasetDict:
    """The same labels written in every format: row 0 one path, row 1 two paths (where a format can say so)."""
    columns = {
        "text": ["a dog food review", "dog food and a snack"],
        "cat1": ["pets", "pets"], "cat2": ["dogs", "dogs"], "cat3": ["food", "food"],
        "path_string": ["pets > dogs > food", "pets > dogs > food;shop > snacks"],
        "path_strings": [["pets > dogs > food"], ["pets > dogs > food", "shop > snacks"]],
        "path_lists": [[["pets", "dogs", "food"]], [["pets", "dogs", "food"], ["shop", "snacks"]]],
        "path_list": [["pets", "dogs", "food"], ["pets", "dogs", "food"]],
        "json_cell": ['[["pets", "dogs", "food"]]', '[["pets", "dogs", "food"], ["shop", "snacks"]]'],  # as in a CSV
    }
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(columns)})


TAXONOMY = Taxonomy.from_paths([("pets", "dogs", "food"), ("pets", "cats", "food"), ("shop", "snacks")])


@pytest.mark.parametrize(("spec", "multi_path"), [
    (LabelColumns(level_columns=("cat1", "cat2", "cat3")), False),
    (LabelColumns(label_column="path_string", path_separator=" > "), True),
    (LabelColumns(label_column="path_strings", path_separator=" > "), True),
    (LabelColumns(label_column="path_lists"), True),
    (LabelColumns(label_column="path_list"), False),  # a list of names and no taxonomy file: one path
    (LabelColumns(label_column="json_cell"), True),
])
def test_every_label_format_gives_the_same_labels(spec: LabelColumns, multi_path: bool) -> None:
    prepared, _ = prepare_labelled_splits(_formats_dataset(), spec, TAXONOMY)
    assert prepared["train"][0]["label_names"] == ["pets", "dogs", "dogs/food"]
    second = ["pets", "shop", "dogs", "snacks", "dogs/food"] if multi_path else ["pets", "dogs", "dogs/food"]
    assert prepared["train"][1]["label_names"] == second
    # without a taxonomy, one is inferred from the paths; cats/food is not in this data
    _, inferred = prepare_labelled_splits(_formats_dataset(), spec)
    assert "food" in inferred and "cats/food" not in inferred


def test_a_bare_name_of_several_labels_is_an_error_listing_their_paths() -> None:
    ds = datasets.Dataset.from_dict({"text": ["x", "y"], "labels": [["dogs/food"], ["food"]]})
    with pytest.raises(AmbiguousLabelError, match=r"train, row 2: label 'food' is ambiguous: it names 2 labels "
                                                  r"\(pets > dogs > food; pets > cats > food\)"):
        prepare_labelled_splits(ds, LabelColumns(), TAXONOMY)
    prepared, _ = prepare_labelled_splits(ds.select([0]), LabelColumns(), TAXONOMY)  # a qualified name is fine
    assert prepared["train"][0]["label_names"] == ["pets", "dogs", "dogs/food"]
    # an ancestor-closed list places the bare name under the parent it lists; a parent of neither does not
    closed = datasets.Dataset.from_dict({"text": ["x", "y"], "labels": [["cats", "food"], ["shop", "food"]]})
    prepared, _ = prepare_labelled_splits(closed.select([0]), LabelColumns(), TAXONOMY)
    assert prepared["train"][0]["label_names"] == ["pets", "cats", "cats/food"]
    with pytest.raises(AmbiguousLabelError, match="train, row 2: label 'food' is ambiguous"):
        prepare_labelled_splits(closed, LabelColumns(), TAXONOMY)


def test_a_taxonomy_file_dag_keeps_one_label_under_two_parents() -> None:
    dag = Taxonomy.from_dict({"Root": ["cats", "dogs"], "cats": ["food"], "dogs": ["food"]})
    ds = datasets.Dataset.from_dict({"text": ["x", "y"], "labels": ["cats > food", "dogs > food"]})
    prepared, taxonomy = prepare_labelled_splits(ds, LabelColumns(path_separator=" > "), dag)
    assert taxonomy.num_labels == 3 and prepared["train"]["label_names"] == [["cats", "dogs", "food"]] * 2
    bare = datasets.Dataset.from_dict({"text": ["z"], "labels": [["food"]]})
    names, _ = prepare_labelled_splits(bare, LabelColumns(), dag)
    assert names["train"][0]["label_names"] == ["cats", "dogs", "food"]


def test_names_need_a_taxonomy_and_unknown_paths_are_named() -> None:
    ds = datasets.Dataset.from_dict({"text": ["x"], "labels": ["food"]})
    with pytest.raises(ValueError, match="bare names and no taxonomy file"):
        prepare_labelled_splits(ds, LabelColumns())
    paths = datasets.Dataset.from_dict({"text": ["x", "y"], "labels": ["pets > fish > food", "shop > snacks"]})
    with pytest.raises(UnknownLabelsError, match="'pets > fish > food' \\(1x\\)"):
        prepare_labelled_splits(paths, LabelColumns(path_separator=" > "), TAXONOMY)
    kept, _ = prepare_labelled_splits(paths, LabelColumns(path_separator=" > "), TAXONOMY, unknown_labels="drop")
    assert kept["train"]["label_names"] == [[], ["shop", "snacks"]]


def test_a_level_below_an_empty_level_is_an_error_naming_the_row() -> None:
    ds = datasets.Dataset.from_dict({"text": ["x", "y"], "a": ["pets", "pets"], "b": ["dogs", None],
                                     "c": ["food", "food"]})
    with pytest.raises(DataFileError, match=r"train, row 2: level column 'c' holds 'food' below the empty 'b'"):
        prepare_labelled_splits(ds, LabelColumns(level_columns=("a", "b", "c")))


def test_class_label_ids_read_through_their_names() -> None:
    names = ["pets > dogs > food", "pets > cats > food", "shop > snacks"]
    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.Sequence(datasets.ClassLabel(names=names)),
                                  "single": datasets.ClassLabel(names=["dogs/food", "snacks"])})
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "labels": [[0], [1, 2], []], "single": [0, 1, -1]},
                                    features=features)
    prepared, taxonomy = prepare_labelled_splits(ds, LabelColumns(path_separator=" > "))
    assert taxonomy.labels == TAXONOMY.labels
    assert prepared["train"]["label_names"] == [["pets", "dogs", "dogs/food"], ["pets", "shop", "cats", "snacks",
                                                                                "cats/food"], []]
    single, _ = prepare_labelled_splits(ds, LabelColumns(label_column="single"), TAXONOMY)
    assert single["train"]["label_names"] == [["pets", "dogs", "dogs/food"], ["shop", "snacks"], []]


def test_a_dataset_with_a_sequence_of_class_label_column_trains(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    names = ["pets > dogs > food", "pets > cats > food", "shop > snacks", "pets > dogs > toys"]
    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.Sequence(datasets.ClassLabel(names=names))})
    rows = {"text": [" ".join(WORDS[i:i + 5]) for i in range(12)], "labels": [[i % 4] + ([2] if i % 3 else [])
                                                                              for i in range(12)]}
    ds = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": ds, "validation": ds.select(range(4))}).save_to_disk(tmp_path / "saved")
    out = tmp_path / "out"
    results = main(["--model_type", "hbgl", "--model_name_or_path", str(tiny_encoder_dir), "--dataset_name",
                    str(tmp_path / "saved"), "--label_path_separator", " > ", "--output_dir", str(out), "--do_train",
                    "--do_eval", *QUICK])
    assert results["train_loss"] > 0 and "eval_micro_f1" in results
    labels, parents = _config_taxonomy(out)
    assert labels == list(Taxonomy.from_paths(n.split(" > ") for n in names).labels)
    assert Taxonomy.from_parents(labels, parents).path_names(labels.index("cats/food")) == ["pets", "cats", "food"]


# ------------------------------------------------------------------ split files, text columns, splits
def test_split_files_with_several_text_columns_and_csv_level_columns(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    rows = synthetic_rows(12)
    header = "title,body,cat1,cat2,cat3\n"
    lines = [f"{t.split()[0]},{t},{a},{b or ''},{c or ''}\n" for t, a, b, c in
             zip(rows["text"], rows["cat1"], rows["cat2"], rows["cat3"], strict=True)]
    (tmp_path / "train.csv").write_text(header + "".join(lines))
    (tmp_path / "dev.csv").write_text(header + "".join(lines[:4]))
    flags = ["--model_type", "flat", "--model_name_or_path", str(tiny_encoder_dir), "--train_file",
             str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "dev.csv"), "--text_column_name",
             "title,body", "--label_level_columns", "cat1,cat2,cat3", *QUICK]
    with pytest.raises(ValueError, match=r"--do_predict need\(s\) the test split \(test\), which --train_file/"
                                         r"--validation_file/--test_file lacks \(splits: dev, train\)"):
        main([*flags, "--output_dir", str(tmp_path / "no"), "--do_predict"])
    results = main([*flags, "--output_dir", str(tmp_path / "out"), "--do_train", "--do_eval"])
    assert "eval_micro_f1" in results
    assert _config_taxonomy(tmp_path / "out")[0] == list(Taxonomy.from_paths(SYNTH_PATHS).labels)


def test_texts_are_joined_and_split_names_normalised(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps({"title": "t", "body": "b", "labels": [["shop"]]}) + "\n")
    raw = load_raw_splits(str(tmp_path))
    assert sorted(raw) == ["dev", "train"]
    prepared, _ = prepare_labelled_splits(raw, LabelColumns(text_columns=("title", "body"), text_delimiter=". "))
    assert prepared["dev"]["text"] == ["t. b"]


def test_the_dataset_dir_layout_still_reads_through_the_taxonomy_file(toy_dataset_dir: Path, tiny_encoder_dir: Path,
                                                                      tmp_path: Path) -> None:
    # the same folder through --dataset_dir (per-line checks) and --dataset_name (datasets.load_dataset)
    labels = []
    for flag in ("--dataset_dir", "--dataset_name"):
        out = tmp_path / flag.strip("-")
        main(["--model_type", "hpt", "--model_name_or_path", str(tiny_encoder_dir), flag, str(toy_dataset_dir),
              "--output_dir", str(out), "--do_train", *QUICK])
        labels.append(_config_taxonomy(out))
    assert labels[0] == labels[1]


def test_the_cli_runs_as_a_module(tiny_encoder_dir: Path, synthetic_levels_dir: Path, tmp_path: Path) -> None:
    # a --dataset_dir without a taxonomy file is read like --dataset_name
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "htc_tools.cli.train", "--model_type", "flat", "--model_name_or_path",
                           str(tiny_encoder_dir), "--dataset_dir", str(synthetic_levels_dir), "--label_level_columns",
                           "cat1,cat2,cat3", "--output_dir", str(out), "--do_train", *QUICK],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "taxonomy inferred from the data: 16 labels" in done.stderr
    assert (out / "config.json").is_file()


# ------------------------------------------------------------------ --config_overrides (update_from_string typing)
def test_config_overrides_take_the_type_of_the_field() -> None:
    overrides = parse_config_overrides("hidden_dropout_prob=0,hierarchy_consistent=yes,loss_columns=all,"
                                       "cpt_segment_id=2,dtype=\"float32\"", HBGLConfig())
    assert overrides == {"hidden_dropout_prob": 0.0, "hierarchy_consistent": True, "loss_columns": "all",
                         "cpt_segment_id": 2, "dtype": "float32"}
    assert isinstance(overrides["hidden_dropout_prob"], float)
    with pytest.raises(ValueError, match="--config_overrides hierarchy_consistent=maybe: can't derive true or false"):
        parse_config_overrides("hierarchy_consistent=maybe", HBGLConfig())
    with pytest.raises(ValueError, match=r"--config_overrides cpt_segment_id=1\.5"):
        parse_config_overrides("cpt_segment_id=1.5", HBGLConfig())


# ------------------------------------------------------------------ review: inputs users really pass
def test_a_trailing_separator_adds_no_level_and_a_separator_without_its_spaces_is_an_error() -> None:
    """``"pets > dogs >"`` is ``pets > dogs`` (not a label ``"dogs >"``); ``"pets>dogs"`` with ``" > "`` would
    silently be one top-level label ``"pets>dogs"``, so it is an error naming the row and the fix."""
    spec = LabelColumns(label_column="path", path_separator=" > ")
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "path": ["pets > dogs >", " > pets > cats > ",
                                                                         "pets  >  dogs"]})
    prepared, taxonomy = prepare_labelled_splits(ds, spec)
    assert taxonomy.labels == ("pets", "dogs", "cats")
    assert prepared["train"]["label_names"] == [["pets", "dogs"], ["pets", "cats"], ["pets", "dogs"]]
    slash, _ = prepare_labelled_splits(datasets.Dataset.from_dict({"text": ["a"], "path": ["/pets/dogs/"]}),
                                       LabelColumns(label_column="path", path_separator="/"))
    assert slash["train"]["label_names"] == [["pets", "dogs"]]
    tight = datasets.Dataset.from_dict({"text": ["a", "b"], "path": ["pets > dogs", "pets>cats"]})
    with pytest.raises(DataFileError, match=r"train, row 2: .*'pets>cats'.*--label_path_separator '>'"):
        prepare_labelled_splits(tight, spec)
    with pytest.raises(DataFileError, match=r"row 1: a label must be a non-empty name"):
        prepare_labelled_splits(datasets.Dataset.from_dict({"text": ["a"], "path": ["pets >  > dogs"]}), spec)


def test_a_bare_name_of_a_top_level_label_and_a_nested_one_is_ambiguous() -> None:
    """``food`` at the top and ``pets > food``: the bare name ``food`` names both (an error listing them), not
    silently the top-level one; its path, its qualified name or its listed parent picks one."""
    taxonomy = Taxonomy.from_paths([("food",), ("pets", "food")])
    assert taxonomy.labels == ("food", "pets", "pets/food")
    ds = datasets.Dataset.from_dict({"text": ["x"], "labels": [["food"]]})
    with pytest.raises(AmbiguousLabelError, match=r"'food' is ambiguous: it names 2 labels \(food; pets > food\)"):
        prepare_labelled_splits(ds, LabelColumns(), taxonomy)
    closed = datasets.Dataset.from_dict({"text": ["x", "y"], "labels": [["pets", "food"], ["pets/food"]]})
    prepared, _ = prepare_labelled_splits(closed, LabelColumns(), taxonomy)
    assert prepared["train"]["label_names"] == [["pets", "pets/food"]] * 2
    paths = datasets.Dataset.from_dict({"text": ["x", "y"], "labels": [["food"], ["pets", "food"]]})
    prepared, _ = prepare_labelled_splits(paths, LabelColumns(label_format="path"), taxonomy)
    assert prepared["train"]["label_names"] == [["food"], ["pets", "pets/food"]]


def test_a_list_of_path_strings_is_not_read_as_one_path_without_a_separator() -> None:
    """``["Pets > Dogs", "Pets > Cats"]`` (two paths) without ``--label_path_separator`` would be detected as one
    path of two names (``Pets > Cats`` a child of ``Pets > Dogs``): detection stops and names the flag."""
    ds = datasets.Dataset.from_dict({"text": ["x"], "labels": [["Pets > Dogs", "Pets > Cats"]]})
    with pytest.raises(ValueError, match=r"--label_path_separator"):
        prepare_labelled_splits(ds, LabelColumns())
    prepared, taxonomy = prepare_labelled_splits(ds, LabelColumns(path_separator=" > "))
    assert taxonomy.labels == ("Pets", "Dogs", "Cats")
    assert prepared["train"]["label_names"] == [["Pets", "Dogs", "Cats"]]
    as_names, _ = prepare_labelled_splits(ds, LabelColumns(label_format="path"))  # asked for: names as they are
    assert as_names["train"]["label_names"] == [["Pets > Dogs", "Pets > Cats"]]


def test_a_csv_list_cell_written_by_pandas_reads_like_a_json_list(tmp_path: Path) -> None:
    """``DataFrame.to_csv`` writes a list column as ``['pets', 'dogs']`` (Python repr, not JSON)."""
    source = tmp_path / "train.csv"
    source.write_text("text,labels\n"
                      "a,\"['pets', 'dogs', 'food']\"\n"
                      "b,\"['pets', \"\"cat's\"\", 'food']\"\n")
    prepared, taxonomy = prepare_labelled_splits(load_raw_splits(train_file=str(source)), LabelColumns())
    assert taxonomy.labels == ("pets", "dogs", "cat's", "dogs/food", "cat's/food")
    assert prepared["train"]["label_names"][1] == ["pets", "cat's", "cat's/food"]


def test_names_in_lists_are_stripped_like_names_in_strings_and_level_columns() -> None:
    """``["pets ", "dogs"]`` and ``["pets", "dogs"]`` are one path (as ``"pets  > dogs"`` and level cells are),
    not two top-level labels ``"pets "`` and ``"pets"``."""
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "labels": [["pets ", "dogs"], ["pets", " dogs\n"]]})
    prepared, taxonomy = prepare_labelled_splits(ds, LabelColumns())
    assert taxonomy.labels == ("pets", "dogs") and prepared["train"]["label_names"] == [["pets", "dogs"]] * 2
    nested = datasets.Dataset.from_dict({"text": ["a", "b"], "labels": [[["pets ", "dogs"]], [["pets", "cats "]]]})
    _, taxonomy = prepare_labelled_splits(nested, LabelColumns())
    assert taxonomy.labels == ("pets", "dogs", "cats")
    names, _ = prepare_labelled_splits(datasets.Dataset.from_dict({"text": ["a"], "labels": [[" snacks "]]}),
                                       LabelColumns(), TAXONOMY)
    assert names["train"][0]["label_names"] == ["shop", "snacks"]


def test_split_files_may_differ_in_columns_and_format(tmp_path: Path) -> None:
    """A train.csv with an extra ``id`` column and a test.csv without it, or a Parquet train split with a JSON Lines
    dev split: each file is read on its own (one ``load_dataset`` over all would stop on the other schema)."""
    (tmp_path / "train.csv").write_text("id,text,path\n1,hello,pets > dogs\n2,NA,pets > cats\n")
    (tmp_path / "test.csv").write_text("text,path\nbye,pets > dogs\n")
    raw = load_raw_splits(train_file=str(tmp_path / "train.csv"), test_file=str(tmp_path / "test.csv"))
    assert raw["train"]["text"] == ["hello", "NA"] and raw["test"].column_names == ["text", "path"]
    datasets.Dataset.from_dict({"text": ["a"], "path": ["pets > dogs"]}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "dev.jsonl").write_text(json.dumps({"text": "b", "path": "pets > cats"}) + "\n")
    raw = load_raw_splits(train_file=str(tmp_path / "train.parquet"), validation_file=str(tmp_path / "dev.jsonl"))
    prepared, taxonomy = prepare_labelled_splits(raw, LabelColumns(label_column="path", path_separator=" > "))
    assert taxonomy.labels == ("pets", "dogs", "cats") and prepared["dev"]["label_names"] == [["pets", "cats"]]


def test_names_that_look_like_paths_are_names_when_a_taxonomy_file_has_them() -> None:
    taxonomy = Taxonomy.from_dict({"Root": ["drugs / chemicals"], "drugs / chemicals": ["a > b"]})
    ds = datasets.Dataset.from_dict({"text": ["x"], "labels": [["a > b"]]})
    prepared, _ = prepare_labelled_splits(ds, LabelColumns(), taxonomy)
    assert prepared["train"][0]["label_names"] == ["drugs / chemicals", "a > b"]
