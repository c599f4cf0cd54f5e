"""``htc-prepare {wos,nyt,rcv1} ...``: build a benchmark dataset folder from the raw files."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .nyt import prepare_nyt
from .rcv1 import prepare_rcv1
from .wos import prepare_wos


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="htc-prepare", description=__doc__)
    sub = parser.add_subparsers(dest="dataset", required=True)
    wos = sub.add_parser("wos", help="WOS-46985 from HDLTex Data.txt")
    wos.add_argument("--data_txt", required=True, help="Data.xlsx saved as tab-separated Data.txt")
    nyt = sub.add_parser("nyt", help="NYT from the LDC corpus")
    nyt.add_argument("--raw_dir", required=True, help="corpus folder (<year>/<month>.tgz or extracted xml)")
    nyt.add_argument("--ids_dir", required=True, help="folder with train.txt, val.txt, test.txt id lists")
    nyt.add_argument("--taxonomy", required=True, help="nyt.taxonomy")
    rcv1 = sub.add_parser("rcv1", help="RCV1-v2 from rcv1.tar.xz + LYRL2004 files")
    rcv1.add_argument("--raw", required=True, help="rcv1.tar.xz or its extracted folder")
    rcv1.add_argument("--ids", required=True, help="rcv1v2-ids.dat[.gz]")
    rcv1.add_argument("--qrels", required=True, help="rcv1-v2.topics.qrels[.gz]")
    rcv1.add_argument("--lyrl_train", required=True, help="lyrl2004_tokens_train.dat[.gz] (.I <id> lines)")
    rcv1.add_argument("--taxonomy", required=True, help="rcv1.taxonomy")
    for p in (wos, nyt, rcv1):
        p.add_argument("--out_dir", required=True)
    args = parser.parse_args(argv)
    if args.dataset == "wos":
        out = prepare_wos(args.data_txt, args.out_dir)
    elif args.dataset == "nyt":
        out = prepare_nyt(args.raw_dir, args.ids_dir, args.taxonomy, args.out_dir)
    else:
        out = prepare_rcv1(args.raw, args.ids, args.qrels, args.lyrl_train, args.taxonomy, args.out_dir)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
