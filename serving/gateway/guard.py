"""What sentence embeddings cannot see, made part of the semantic-cache key.

Cosine similarity on small sentence encoders is close to 1 for prompts that ask opposite things: "enable 2FA" vs
"disable 2FA", "convert 10 km to miles" vs "convert 10 miles to km", "Python" vs "Java", "A beat B" vs "B beat A".
No threshold separates those from true paraphrases. So the cache key carries a *signature* that such prompts
never share:

- **numbers** (digits and number words, as a multiset), so changed versions, limits, dates and amounts never match;
- **polarity**: negations (not, no, never, without, n't ...) and contrast words reduced to a canonical form
  (enable/turn on/activate -> ``enable``; disable/turn off/deactivate -> ``disable``; add/remove; increase/decrease;
  before/after; min/max ...), so "enable" and "turn on" still match each other but never "disable";
- **entities**: capitalised words past the start of a sentence, acronyms, tokens mixing letters and digits,
  code-like tokens, quoted strings, and a small list of lower-case technology names and units.

Entries are only compared within the same signature (it is part of the index scope). After the nearest neighbours
are found, :func:`same_order` also requires the anchors (entities, numbers, polarity words) and the content words
both prompts share to appear in the same order, which rejects swapped roles and directions.
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"`[^`]+`|\"[^\"]+\"|'[^'\s][^']*[^'\s]'|[A-Za-z0-9][A-Za-z0-9_.+#/-]*(?:'[a-z]+)?|[.?!;:]")
_NUM = re.compile(r"^\d+(?:[.,:/-]\d+)*%?$")

NEGATIONS = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "cant",
             "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt", "shouldnt",
             "couldnt", "hasnt", "havent", "hadnt", "n't", "except", "excluding", "unless"}

# surface form (lower case, possibly two words) -> canonical contrast word
_POLAR_GROUPS = {
    "enable": "enable enabled enabling activate activated turn-on switch-on allow allowed unblock unmute",
    "disable": "disable disabled disabling deactivate deactivated turn-off switch-off deny denied block mute",
    "add": "add adding insert append create install attach include",
    "remove": "remove removing delete deleting drop uninstall detach exclude erase",
    "increase": "increase increasing raise grow expand extend maximize more higher bigger larger longer faster",
    "decrease": "decrease decreasing lower reduce shrink minimize less fewer smaller shorter slower",
    "max": "max maximum most largest highest biggest",
    "min": "min minimum least smallest lowest",
    "before": "before prior earlier",
    "after": "after later following",
    "start": "start starting begin launch boot",
    "stop": "stop stopping end halt kill terminate shutdown",
    "open": "open opening",
    "close": "close closing",
    "encrypt": "encrypt encryption encrypting",
    "decrypt": "decrypt decryption decrypting",
    "upload": "upload uploading push",
    "download": "download downloading pull",
    "import": "import importing",
    "export": "export exporting",
    "buy": "buy buying purchase",
    "sell": "sell selling",
    "accept": "accept approve approved",
    "reject": "reject refuse declined decline",
    "lock": "lock locking",
    "unlock": "unlock unlocking",
    "hide": "hide hiding conceal",
    "join": "join joining",
    "leave": "leave leaving quit",
    "true": "true yes",
    "false": "false",
    "above": "above over exceed exceeds",
    "below": "below under",
    "input": "input inputs",
    "output": "output outputs",
    "first": "first",
    "last": "last final",
    "best": "best",
    "worst": "worst",
    "pros": "pros advantages benefits",
    "cons": "cons disadvantages drawbacks downsides",
    "win": "win won wins",
    "lose": "lose lost loses",
}
POLARITY: dict[str, str] = {w: canon for canon, words in _POLAR_GROUPS.items() for w in words.split()}

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000",
                      "million": "1000000", "billion": "1000000000", "second": "2nd", "third": "3rd"})

# lower-case names users rarely capitalise: languages, platforms, tools, units
KNOWN = set("""python java javascript typescript rust golang ruby php perl kotlin swift scala haskell elixir c++ c#
sql mysql postgres postgresql sqlite mongodb redis valkey kafka docker kubernetes k8s helm terraform pulumi aws azure gcp
linux windows macos mac ios android ubuntu debian fedora excel git github gitlab bitbucket npm pip conda react vue
angular django flask spring node nodejs deno bash zsh powershell vim emacs vscode chrome firefox safari slack zoom
iphone ipad pixel samsung celsius fahrenheit kelvin km kilometers kilometres miles mile meters metres feet foot inches
inch cm mm kg kilograms pounds lbs grams ounces oz liters litres gallons usd eur euros dollars gbp yen jpy btc bitcoin
ethereum json yaml xml csv html css pdf png jpg utc gmt est pst""".split())

STOPWORDS = set("""a an the is are was were be been being am do does did doing have has had having i me my we our you
your he she it its they them their this that these those what which who whom whose when where why how to of in on at
for from by with about as into onto than then there here so and or but if can could should would will shall may
might must please tell explain give me show let lets get got need want way ways some any all each every just also
very really much many what's how's it's i'm i've i'd you're like use using used make making made help know""".split())


def tokens(text: str) -> list[str]:
    """Word tokens with contractions split (``isn't`` -> ``is``, ``n't``) and sentence marks kept."""
    out: list[str] = []
    for t in _WORD.findall(text):
        low = t.lower()
        if low.endswith("n't") and len(t) > 3:
            out.extend([t[:-3], "n't"])
        elif "'" in t and not t.startswith(("'", "\"", "`")):
            out.append(t.split("'")[0])
        else:
            out.append(t)
    return out


def _is_entity(tok: str, sentence_start: bool) -> bool:
    if tok[0] in "`\"'":
        return True
    low = tok.lower()
    if low in KNOWN:
        return True
    has_alpha = any(c.isalpha() for c in tok)
    has_digit = any(c.isdigit() for c in tok)
    if has_alpha and has_digit:
        return True
    if any(c in tok for c in "_/#+") or (("." in tok.strip(".")) and has_alpha):
        return True
    if len(tok) >= 2 and tok.isupper():
        return True
    if any(c.isupper() for c in tok[1:]):  # camelCase, iPhone
        return True
    if tok[0].isupper() and not sentence_start and low not in STOPWORDS:
        return True
    if len(tok) == 1 and tok.isupper() and tok not in ("I", "A"):
        return True
    return False


def anchors(text: str) -> list[tuple[str, str]]:
    """Ordered (kind, value) pairs: ``num``, ``neg``, ``pol`` and ``ent`` anchors found in ``text``."""
    toks = tokens(text)
    out: list[tuple[str, str]] = []
    start = True
    i = 0
    while i < len(toks):
        t = toks[i]
        low = t.lower().strip(".")
        if t in ".?!;:":
            start = True
            i += 1
            continue
        two = f"{low}-{toks[i + 1].lower()}" if i + 1 < len(toks) else ""
        if two in POLARITY:
            out.append(("pol", POLARITY[two]))
            i += 2
            start = False
            continue
        if _NUM.match(low):
            out.append(("num", low.replace(",", "")))
        elif low in _NUMBER_WORDS:
            out.append(("num", _NUMBER_WORDS[low]))
        elif low in NEGATIONS:
            out.append(("neg", "not"))
        elif low in POLARITY:
            out.append(("pol", POLARITY[low]))
        elif _is_entity(t, start):
            out.append(("ent", low.strip("`\"'")))
        start = False
        i += 1
    return out


def signature(text: str) -> str:
    """Order-free digest of the anchors: prompts whose signatures differ are never cache matches."""
    parts = sorted(f"{k}:{v}" for k, v in anchors(text))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _content(text: str) -> list[str]:
    out = []
    for t in tokens(text):
        low = t.lower()
        if len(low) >= 3 and low not in STOPWORDS and low.isalpha():
            out.append(low[:-1] if low.endswith("s") and len(low) > 4 else low)
    return out


def _shared_order(a: list[str], b: list[str]) -> bool:
    shared = set(a) & set(b)
    sa = [w for w in dict.fromkeys(a) if w in shared]
    sb = [w for w in dict.fromkeys(b) if w in shared]
    return sa == sb


def same_order(a: str, b: str) -> bool:
    """True when anchors and the content words both prompts share appear in the same order (roles, direction)."""
    return [v for _, v in anchors(a)] == [v for _, v in anchors(b)] and _shared_order(_content(a), _content(b))


def compatible(a: str, b: str) -> bool:
    """The full guard: same signature and same order."""
    return signature(a) == signature(b) and same_order(a, b)
