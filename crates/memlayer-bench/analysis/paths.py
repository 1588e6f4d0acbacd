"""Where the analysis scripts find their inputs: the repo, ../shared/data, the eval's dump."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, '..', 'shared', 'data')
DUMP = os.environ.get('LOCOMO_DUMP', '/tmp/locomo-dump.jsonl')


def stopwords():
    """memlayer's stopword list, read from the source so the two never drift."""
    text = open(os.path.join(ROOT, 'crates/memlayer-store/src/ranking/text.rs')).read()
    return set(re.findall(r'^    "([a-z]+)",$', text, re.M))
