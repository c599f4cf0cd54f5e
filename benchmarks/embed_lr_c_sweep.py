"""C sweep for embed_lr on rcv1_sample: encode once (cached), fit per C, dev/test micro/macro at 0.5 and per-level tuned."""
import json, time, sys
import numpy as np, torch
torch.set_num_threads(1)
from pathlib import Path
from transformers import AutoTokenizer
from htc_tools.data import load_dataset_dir
from htc_tools.training import resolve_model_path
from htc_tools.embed_lr import EmbedLRForHierarchicalClassification
from htc_tools.embed_lr_training import encode, fit_label_regressions
from htc_tools.metrics import micro_macro_f1
from htc_tools.threshold_tuning import probability_selector, tune_thresholds
name = sys.argv[1]; limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
splits, tax = load_dataset_dir(f"/work/shared/datasets/{name}")
path = resolve_model_path("embedded-minilm"); tok = AutoTokenizer.from_pretrained(path)
model = EmbedLRForHierarchicalClassification.from_encoder(path, list(tax.labels), [list(p) for p in tax.parents], pooling="mean", normalize=True)
cache = Path(f"/tmp/elr/emb-{name}-{limit}.npz")
if cache.exists():
    z = np.load(cache); X = {k: z[k] for k in z}
else:
    t = time.time(); X = {}
    for s in ("train", "dev", "test"):
        texts = splits[s]["text"][:limit] if s == "train" and limit else splits[s]["text"]
        X[s] = encode(model, tok, texts, 64)
    print("encode s", time.time() - t, flush=True); np.savez(cache, **X)
Y = {s: np.asarray(splits[s]["labels"][:len(X[s])]) for s in X}
for c in [1.0, 4.0, 16.0]:
    t = time.time(); coef, b = fit_label_regressions(X["train"], Y["train"], c); ft = time.time() - t
    P = {s: 1 / (1 + np.exp(-(X[s] @ coef.T + b))) for s in ("dev", "test")}
    half = {s: micro_macro_f1(Y[s], P[s] > 0.5) for s in P}
    sel = probability_selector(P["dev"], tax)
    g, lv, _ = tune_thresholds(sel, Y["dev"], tax.depth, "per_level")
    tuned = micro_macro_f1(Y["test"], probability_selector(P["test"], tax)(lv))
    gg, _, _ = tune_thresholds(sel, Y["dev"], tax.depth, "global")
    tg = micro_macro_f1(Y["test"], P["test"] > gg)
    print(json.dumps({"C": c, "fit_s": round(ft, 1), "dev@0.5": [round(half["dev"][k], 4) for k in ("micro_f1", "macro_f1")],
                      "test@0.5": [round(half["test"][k], 4) for k in ("micro_f1", "macro_f1")],
                      "test@global": [gg, round(tg["micro_f1"], 4), round(tg["macro_f1"], 4)],
                      "test@per_level": [lv, round(tuned["micro_f1"], 4), round(tuned["macro_f1"], 4)]}), flush=True)
