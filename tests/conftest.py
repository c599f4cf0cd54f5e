"""Shared fixtures: tiny BERT configs and models, a tokenizer from a vocab written here, small datasets,
and network blocking (no test may download anything)."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub / datasets / transformers: they read these once, at import.
for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_name] = "1"

import copy  # noqa: E402
import ipaddress  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_TAXONOMIES = SHARED / "taxonomies"

WORDS = (
    "the a of and to in is for on with about news sports ball game team score goal match play "
    "science physics atom lab energy chemistry molecule biology cell gene art music song band "
    "paint film movie actor politics vote election law court economy market stock bank trade"
).split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# A small hierarchy with a multi-parent label ("biochem" under "chemistry" and "biology").
TOY_TAXONOMY = {
    "Root": ["sports", "science", "arts"],
    "sports": ["ball", "track"],
    "science": ["chemistry", "biology"],
    "arts": ["music"],
    "chemistry": ["biochem"],
    "biology": ["biochem", "genes"],
}


def is_local_host(host: object) -> bool:
    """Loopback names and addresses, and the unspecified address (binding a server)."""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host is None or host in ("", "localhost"):
        return True
    if not isinstance(host, str):
        return False
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _blocked(what: str, address: object) -> OSError:
    return OSError(f"network access is blocked in tests ({what} {address!r})")


def _local(sock: socket.socket, address: object) -> bool:
    return sock.family == socket.AF_UNIX or is_local_host(address[0] if isinstance(address, tuple) else address)


_REAL = {"connect": socket.socket.connect, "connect_ex": socket.socket.connect_ex, "sendto": socket.socket.sendto,
         "sendmsg": socket.socket.sendmsg, "create_connection": socket.create_connection,
         "getaddrinfo": socket.getaddrinfo, "gethostbyname": socket.gethostbyname,
         "gethostbyname_ex": socket.gethostbyname_ex, "gethostbyaddr": socket.gethostbyaddr,
         "getnameinfo": socket.getnameinfo}


def _guarded_connect(self: socket.socket, address: object) -> object:
    if not _local(self, address):
        raise _blocked("connect", address)
    return _REAL["connect"](self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _local(self, address):
        raise _blocked("connect_ex", address)
    return _REAL["connect_ex"](self, address)


def _guarded_sendto(self: socket.socket, data: bytes, *args: object) -> int:
    if not _local(self, args[-1]):
        raise _blocked("sendto", args[-1])
    return _REAL["sendto"](self, data, *args)


def _guarded_create_connection(address: tuple, *args: object, **kwargs: object) -> socket.socket:
    if not is_local_host(address[0]):
        raise _blocked("create_connection", address)
    return _REAL["create_connection"](address, *args, **kwargs)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
    if not is_local_host(host):
        raise _blocked("getaddrinfo", host)
    return _REAL["getaddrinfo"](host, *args, **kwargs)


def _guarded_sendmsg(self: socket.socket, buffers: object, *args: object) -> int:
    if len(args) >= 3 and not _local(self, args[2]):  # (ancdata, flags, address)
        raise _blocked("sendmsg", args[2])
    return _REAL["sendmsg"](self, buffers, *args)


def _guarded_lookup(name: str) -> object:
    def guarded(host: object, *args: object, **kwargs: object) -> object:
        target = host[0] if isinstance(host, tuple) else host  # getnameinfo takes (host, port)
        if not is_local_host(target):
            raise _blocked(name, host)
        return _REAL[name](host, *args, **kwargs)

    return guarded


GUARDS = {(socket.socket, "connect"): _guarded_connect, (socket.socket, "connect_ex"): _guarded_connect_ex,
          (socket.socket, "sendto"): _guarded_sendto, (socket.socket, "sendmsg"): _guarded_sendmsg,
          (socket, "create_connection"): _guarded_create_connection, (socket, "getaddrinfo"): _guarded_getaddrinfo,
          **{(socket, name): _guarded_lookup(name)
             for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")}}
for (_owner, _attr), _guard in GUARDS.items():  # from collection on, session fixtures included
    setattr(_owner, _attr, _guard)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any non-local connection, UDP send or name lookup (the guards are installed at import; this
    re-installs them for each test, so one test replacing a socket function cannot open the way out)."""
    for (owner, attr), guard in GUARDS.items():
        monkeypatch.setattr(owner, attr, guard)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")


@pytest.fixture(autouse=True)
def onednn_cache_settings_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training script writes oneDNN's cache capacities into ``os.environ`` (htc_tools/memory.py): every test
    leaves them as it found them, so that no test's outcome depends on which CLI test ran before it."""
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        value = os.environ.get(name)
        monkeypatch.setenv(name, "" if value is None else value)  # recorded: restored (or removed) afterwards
        if value is None:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(SPECIAL + WORDS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer(vocab_file: Path):
    from transformers import BertTokenizer

    return BertTokenizer(vocab=str(vocab_file), do_lower_case=True)


@pytest.fixture
def tiny_bert_config(vocab_file: Path):
    from transformers import BertConfig

    vocab_size = len(vocab_file.read_text().split())
    return copy.deepcopy(BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
    ))


@pytest.fixture
def toy_taxonomy():
    from htc_tools.taxonomy import Taxonomy

    return Taxonomy.from_dict(TOY_TAXONOMY)


@pytest.fixture
def toy_records() -> list[dict]:
    """Keyword-driven records over TOY_TAXONOMY (labels leaf-only; the loader closes them)."""
    rows = [
        ("the team won the ball game", ["ball"]),
        ("a goal in the match", ["ball"]),
        ("the track score", ["track"]),
        ("the molecule and the gene", ["biochem"]),
        ("a gene in the cell", ["genes"]),
        ("energy of the atom in the lab", ["chemistry"]),
        ("the band and the song", ["music"]),
        ("the film about the actor", ["arts"]),
    ]
    return [{"text": t, "labels": ls} for t, ls in rows]


@pytest.fixture
def toy_dataset_dir(tmp_path: Path, toy_records: list[dict]) -> Path:
    (tmp_path / "taxonomy.json").write_text(json.dumps(TOY_TAXONOMY))
    for split in ("train", "dev", "test"):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in toy_records)
    return tmp_path


def shared_taxonomy(name: str) -> Path:
    """A file of ../shared/taxonomies; the test is skipped where that folder is absent."""
    path = SHARED_TAXONOMIES / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


ALL_PACKAGES = ("hbgl_hf", "hpt_hf", "htc_tools")
MODEL_PACKAGES = ("hbgl_hf", "hpt_hf")
REPO_ROOT = Path(__file__).resolve().parents[1]


def block_packages(blocked: tuple[str, ...] = ALL_PACKAGES) -> str:
    """Script prelude that makes the ``blocked`` top-level packages unimportable."""
    return textwrap.dedent(f"""
        import importlib.abc, json, sys
        BLOCKED = {tuple(blocked)!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        for blocked in BLOCKED:
            try:
                __import__(blocked)
                sys.exit(blocked + " must not be importable here")
            except ImportError:
                pass
    """)


BLOCK_PACKAGES = block_packages()


def run_without_packages(script: str, *args: str, home: Path, blocked: tuple[str, ...] = ALL_PACKAGES,
                         cwd: Path | None = None) -> dict:
    """Run ``script`` in a fresh offline interpreter where the ``blocked`` packages (default: hbgl_hf, hpt_hf and
    htc_tools) cannot be imported (as on a machine that only has transformers; the others are importable from
    this checkout); returns the JSON object its last stdout line prints."""
    path = "" if set(ALL_PACKAGES) <= set(blocked) else str(REPO_ROOT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(home / "hf_home"), "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", block_packages(blocked) + textwrap.dedent(script), *args],
                            capture_output=True, text=True, env=env, cwd=cwd or home, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


REMOTE_LOGITS = """
    import torch
    from transformers import AutoConfig, AutoModel
    folder, ids, mask = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    with torch.no_grad():
        logits = model(torch.tensor(ids), torch.tensor(mask)).logits
    print(json.dumps({"model_type": config.model_type, "logits": logits.tolist()}))
"""


def remote_logits(folder: Path, ids, mask, home: Path) -> tuple[str, list]:
    """``AutoModel.from_pretrained(folder, trust_remote_code=True)`` logits, computed without the packages."""
    out = run_without_packages(REMOTE_LOGITS, str(folder), json.dumps(ids.tolist()), json.dumps(mask.tolist()),
                               home=home)
    return out["model_type"], out["logits"]


@pytest.fixture
def tiny_encoder_dir(tmp_path: Path, tiny_bert_config, tokenizer) -> Path:
    """A tiny BERT-with-MLM-head checkpoint + tokenizer saved to a folder, as users pass a Hub encoder."""
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    folder = tmp_path / "tiny-encoder"
    BertForMaskedLM(tiny_bert_config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# ------------------------------------------------------------------ tiny models on raw ids (HBGL and HPT tests)
TINY_BASE_VOCAB = 40  # word ids of the tiny models; [PAD]=0, [CLS]=2, [SEP]=3, [MASK]=4; label rows follow


def padded_batch(lengths: list[int], seed: int = 1):
    """Right-padded ``[CLS] random words [SEP]`` rows of the given lengths: ``(input_ids, attention_mask)``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY_BASE_VOCAB, (len(lengths), max(lengths)), generator=g)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        ids[i, 0], ids[i, n - 1] = 2, 3
        ids[i, n:] = 0
    return ids, mask


def keyword_task_micro_f1(model, taxonomy) -> tuple[float, float]:
    """Train ``model`` (15 epochs, AdamW 5e-3) on texts whose one keyword names a label, then return the
    test micro-F1 of its ``decode()`` and of the majority baseline (the most frequent training label set)."""
    import torch

    from htc_tools.metrics import micro_macro_f1

    keywords = {"ball": 10, "track": 11, "biochem": 12, "genes": 13, "music": 14, "chemistry": 15}
    g = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(160):
        leaf = list(keywords)[int(torch.randint(len(keywords), (1,), generator=g))]
        noise = torch.randint(20, TINY_BASE_VOCAB, (5,), generator=g).tolist()
        pos = int(torch.randint(5, (1,), generator=g))
        y = torch.zeros(taxonomy.num_labels)
        y[sorted(taxonomy.ancestor_closure([taxonomy.id(leaf)]))] = 1
        examples.append((torch.tensor([2, *noise[:pos], keywords[leaf], *noise[pos:], 3]), y))
    train, test = examples[:120], examples[120:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _epoch in range(15):
        for i in range(0, len(train), 16):
            ids = torch.stack([x for x, _ in train[i : i + 16]])
            labels = torch.stack([y for _, y in train[i : i + 16]])
            model(ids, torch.ones_like(ids), labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    ids = torch.stack([x for x, _ in test])
    gold = torch.stack([y for _, y in test]).numpy()
    pred = model.decode(ids, torch.ones_like(ids)).selected.numpy()
    train_gold = torch.stack([y for _, y in train])
    majority = (train_gold.mean(0) >= 0.5).float()
    if not majority.any():
        majority[train_gold.sum(0).argmax()] = 1
    baseline = micro_macro_f1(gold, majority.expand(len(test), -1).numpy())["micro_f1"]
    return micro_macro_f1(gold, pred)["micro_f1"], baseline
