"""Export specs/data/messages_{train,test}.npz: which language is a program message written in?

The text is real: the messages of GNU and Debian command-line tools (coreutils, grep, sed, tar,
bash, dpkg, apt, ...) and their translations, read from the gettext catalogs that Debian
installs under /usr/share/locale. English is the original (msgid); German, French, Spanish,
Italian and Dutch are the translators' work. A message and all its translations land in the
same split, so no test sentence has a translation seen in training.
Each sample is the message's characters as ids (0 = padding, 1 = a character outside the
vocabulary), padded to SEQUENCE. Run once: `python scripts/export_text_data.py`.
"""

from __future__ import annotations

import collections
import gettext
import json
import re
from pathlib import Path

import numpy as np

SEED = 20261207
SEQUENCE = 64
VOCAB = 96  # ids 2.. for the most frequent characters of the training text
LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
DOMAINS = (
    "coreutils",
    "grep",
    "sed",
    "tar",
    "bash",
    "dpkg",
    "apt",
    "findutils",
    "diffutils",
    "make",
    "wget",
    "gettext-runtime",
    "gettext-tools",
    "adduser",
    "procps-ng",
    "psmisc",
    "man-db",
    "xz",
    "libc",
    "shadow",
    "util-linux",
    "gnupg2",
    "binutils",
    "bfd",
    "gprof",
)
PER_LANGUAGE = {"train": 800, "test": 200}
LOCALE = Path("/usr/share/locale")
OUT = Path(__file__).resolve().parent.parent / "specs" / "data"


def _clean(text: str) -> str:
    """One line of plain words: format directives, accelerators and markup removed."""
    text = re.sub(r"%[-#0 +'I]*[0-9*]*(\.[0-9*]+)?[hlLqjzt]*[a-zA-Z%]", " ", text)
    text = re.sub(r"[_&]|<[^>]*>|\\[nt]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _catalogs() -> dict[str, dict[str, str]]:
    """msgid -> {language: text} for messages translated into every language."""
    table: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for domain in DOMAINS:
        for lang in LANGUAGES[1:]:
            path = LOCALE / lang / "LC_MESSAGES" / f"{domain}.mo"
            if not path.exists():
                continue
            with path.open("rb") as handle:
                catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
            for key, value in catalog.items():
                if isinstance(key, str) and key and isinstance(value, str):
                    table[key][lang] = value
    full = {}
    for key, row in table.items():
        texts = {"en": _clean(key), **{k: _clean(v) for k, v in row.items()}}
        if (
            len(texts) == len(LANGUAGES)
            and all(
                20 <= len(t) <= SEQUENCE and sum(c.isalpha() for c in t) >= 15
                for t in texts.values()
            )
            and len(set(texts.values())) == len(LANGUAGES)
        ):
            full[key] = texts
    return full


def main() -> None:
    messages = _catalogs()
    keys = sorted(messages)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(keys))
    n_test = PER_LANGUAGE["test"]
    n_train = PER_LANGUAGE["train"]
    if len(keys) < n_train + n_test:
        raise SystemExit(f"only {len(keys)} fully translated messages found")
    chosen = {"test": order[:n_test], "train": order[n_test : n_test + n_train]}
    counts = collections.Counter(
        c for i in chosen["train"] for t in messages[keys[i]].values() for c in t
    )
    vocab = [c for c, _ in counts.most_common(VOCAB - 2)]
    ids = {c: i + 2 for i, c in enumerate(vocab)}
    for split, rows in chosen.items():
        samples = [(messages[keys[i]][lang], k) for i in rows for k, lang in enumerate(LANGUAGES)]
        shuffle = np.random.default_rng(SEED + len(split)).permutation(len(samples))
        x = np.zeros((len(samples), SEQUENCE), dtype=np.int32)
        y = np.zeros(len(samples), dtype=np.int32)
        text = []
        for row, j in enumerate(shuffle):
            sentence, label = samples[j]
            x[row, : len(sentence)] = [ids.get(c, 1) for c in sentence]
            y[row] = label
            text.append(sentence)
        # the sentences themselves only for the test set, to read predictions against
        extra = {"text": np.array(text)} if split == "test" else {}
        np.savez(OUT / f"messages_{split}.npz", x=x, y=y, **extra)
    (OUT / "messages_vocabulary.json").write_text(
        json.dumps({"languages": LANGUAGES, "characters": "".join(vocab)}, ensure_ascii=False)
        + "\n"
    )
    print(f"{len(keys)} messages in all six languages; vocabulary {len(vocab) + 2}")


if __name__ == "__main__":
    main()
