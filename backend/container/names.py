"""Generated container names, docker-style (adjective_noun)."""

from __future__ import annotations

import os

ADJECTIVES = ("brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
              "merry", "nimble", "proud", "quick", "quiet", "sharp", "silly", "sunny", "swift", "witty")
NOUNS = ("badger", "beaver", "crane", "falcon", "ferret", "gecko", "heron", "ibis", "koala", "lemur",
         "lynx", "marten", "otter", "panda", "puffin", "raven", "stoat", "tapir", "walrus", "zebra")


def generate_name() -> str:
    a, b, c = os.urandom(3)
    return f"{ADJECTIVES[a % len(ADJECTIVES)]}_{NOUNS[b % len(NOUNS)]}_{c % 100}"
