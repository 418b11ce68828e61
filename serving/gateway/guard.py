"""The semantic cache's decision procedure: what sentence embeddings cannot see, checked pair by pair.

Cosine similarity on small sentence encoders is close to 1 for prompts that ask different things: "enable 2FA" vs
"disable 2FA", "convert 10 km to miles" vs "convert 10 miles to km", "Python" vs "Java", "sort ascending" vs "sort
descending". No threshold separates those from true paraphrases, so a hit needs the cosine *and* these rules:

1. **Normalisation** before anything is compared: Unicode compatibility forms, curly quotes and apostrophes
   (``isn’t`` -> ``isn't``), case, trailing punctuation, whitespace, and an alias table (:data:`ALIASES`: JS ->
   javascript, Postgres -> postgresql, golang -> go, oz -> ounces ...).
2. **Long prompts** (RAG: documents first, the question last; or a short question before code or an email) are split
   by :func:`split`: the context must match as its canonical word sequence (:func:`context_key`: markup, separators,
   bullet glyphs, XML-like tags, document labels such as "[Document 2]" or "Source 1:", whitespace, punctuation and
   template lines -- greetings, sign-offs, instructions such as "Use the following documents to answer"
   (:func:`is_template_line`) -- do not count, any word of a document does; it is part of the index scope) and only
   the question, without greetings, pleasantries, a grounding instruction ("Based only on the context above:") or a
   closing instruction (:func:`clean_question`), is embedded and judged.
3. **Anchors must agree** (:func:`analyze`): numbers (digits and number words, as a multiset), negations,
   ("non-refundable" is a negation of "refundable"), polarity words reduced to a canonical form (enable/turn on ->
   ``enable``; disable/turn off -> ``disable``) of
   which one prompt may not hold a word and the other its antonym (:data:`ANTONYMS`: enable/disable,
   ascending/descending, awake/asleep, in/out, tenant/landlord ...), quantifiers (all/every/each vs one), and
   entities (capitalised words, acronyms, code-like tokens, one-letter labels such as "drug A", known technology
   names and units); an entity of one prompt must occur in the other (a code without its hyphen, a quoted phrase as
   its words); when both ask with who/when/where/why, the same question word.
4. **No role or direction swap**: the terms both prompts share must not differ by one exchange of two terms
   ("A beat B" / "B beat A"), a shared term may not fill a second role in one prompt and another shared term in the
   other ("... we represent the lender" / "... the borrower"), and the term right after a direction word (to, from,
   into, than, vs ...) must be the same in both ("from French to English" / "from English to French"). Reordered
   paraphrases ("At sea level, what is ...?" / "What is ... at sea level?") pass: they move a block, they do not
   exchange two terms.
5. **Changed content words** (:class:`Policy`), after stemming, -ise/-ize spellings, a small synonym table, filler
   words ("pls", "walk me through") and one-letter typos of long words, in tiers: the same content words -> the base
   ``threshold``; a few words reworded (at most ``max_changed_words``) -> ``threshold_reworded``; more words reworded
   on both sides -> ``threshold_strict``; words only *added* on one side are a narrower request ("Side effects of
   lisinopril" / "... in elderly patients"): a widening "and"/"or" or a restrictive modifier never hits, two or more
   added words or one in a qualifying phrase ("for contractors") need ``threshold_strict``, more than
   ``max_changed_words`` added words never hit.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

# --- data ------------------------------------------------------------------------------------------------------------

# surface form (lower case) -> canonical name. Source: common spellings of the same product or unit (2026-12).
ALIASES: dict[str, str] = {
    "js": "javascript", "ecmascript": "javascript", "ts": "typescript", "postgres": "postgresql", "psql": "postgresql",
    "pg": "postgresql", "golang": "go", "k8s": "kubernetes", "kube": "kubernetes", "py": "python", "python3": "python",
    "nodejs": "node.js", "node": "node.js", "osx": "macos", "mac": "macos", "macosx": "macos",
    "oz": "ounce", "ounces": "ounce", "lb": "pound", "lbs": "pound", "pounds": "pound", "km": "kilometer",
    "kms": "kilometer", "kilometre": "kilometer", "kilometres": "kilometer", "kilometers": "kilometer", "mi": "mile",
    "miles": "mile", "kg": "kilogram", "kgs": "kilogram", "kilograms": "kilogram", "g": "gram", "grams": "gram",
    "cm": "centimeter", "centimeters": "centimeter", "centimetres": "centimeter", "inches": "inch", "ft": "foot",
    "feet": "foot", "ml": "milliliter", "milliliters": "milliliter", "millilitres": "milliliter", "l": "liter",
    "litres": "liter", "liters": "liter", "litre": "liter", "°c": "celsius", "°f": "fahrenheit", "sci-fi": "science-fiction",
    "2fa": "two-factor", "mfa": "multi-factor", "db": "database", "repo": "repository", "dict": "dictionary",
    "dicts": "dictionary", "virtualenv": "virtual-environment", "venv": "virtual-environment", "u.s": "usa", "uk": "united-kingdom", "vscode": "visual-studio-code",
    "mongo": "mongodb", "ml": "machine-learning", "gke": "google-kubernetes-engine", "eks": "amazon-eks",
}
# two-word forms joined before lookup
PHRASES: dict[str, str] = {
    "mac os": "macos", "node js": "node.js", "science fiction": "science-fiction", "two factor": "two-factor",
    "2 factor": "two-factor", "virtual environment": "virtual-environment", "united states": "usa",
    "united kingdom": "united-kingdom", "amazon web services": "aws", "google cloud platform": "gcp",
    "google cloud": "gcp", "machine learning": "machine-learning", "visual studio code": "visual-studio-code",
    "fluid ounces": "fluid-ounce",
    "walk me through": "explain", "walk through": "explain",
    "fl oz": "fluid-ounce", "fluid ounce": "fluid-ounce", "turn on": "enable", "switch on": "enable",
    "turn off": "disable", "switch off": "disable", "log in": "login", "sign in": "login", "log into": "login",
    "log out": "logout", "sign out": "logout", "opt in": "opt-in", "opt out": "opt-out", "check in": "check-in",
    "check out": "check-out", "zoom in": "zoom-in", "zoom out": "zoom-out", "out of": "out",
    "light mode": "light-mode", "dark mode": "dark-mode", "light theme": "light-theme", "dark theme": "dark-theme",
    "during the day": "daytime", "in the morning": "morning", "at night": "night", "in the evening": "evening",
}

NEGATIONS = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "n't",
             "except", "excluding", "unless", "lack", "lacks", "avoid", "avoiding"}

# canonical -> surface forms (lower case). Words of different groups reverse or change the request.
_POLAR_GROUPS = {
    "enable": "enable enabled enabling activate activated allow allowed unblock unmute permit permitted",
    "disable": "disable disabled disabling deactivate deactivated deny denied block mute forbid forbids forbidden "
               "prohibit prohibits prohibited ban",
    "add": "add adding insert append install attach include includes including",
    "remove": "remove removing delete deleting drop uninstall detach exclude excludes erase",
    "increase": "increase increasing raise grow expand maximize higher bigger larger longer more",
    "decrease": "decrease decreasing lower reduce shrink minimize smaller shorter less fewer",
    "max": "max maximum most largest highest biggest",
    "min": "min minimum least smallest lowest",
    "before": "before prior earlier",
    "after": "after later afterwards",
    "start": "start starting begin launch boot",
    "stop": "stop stopping end halt kill terminate shutdown",
    "open": "open opening opened",
    "close": "close closing closed",
    "encrypt": "encrypt encryption encrypting",
    "decrypt": "decrypt decryption decrypting",
    "upload": "upload uploading push",
    "download": "download downloading pull",
    "import": "import importing",
    "export": "export exporting",
    "buy": "buy buying purchase bought",
    "sell": "sell selling sold",
    "accept": "accept approve approved accepted",
    "reject": "reject refuse declined decline rejected",
    "lock": "lock locking locked",
    "unlock": "unlock unlocking unlocked",
    "show": "visible unhide",
    "hide": "hide hiding conceal invisible hidden",
    "join": "join joining",
    "leave": "leave leaving quit",
    "true": "true",
    "false": "false",
    "above": "above exceed exceeds",
    "below": "beneath",
    "input": "input inputs",
    "output": "output outputs",
    "first": "first",
    "last": "last final",
    "best": "best",
    "worst": "worst",
    "good": "good safe healthy strong benefit benefits advantage advantages pros legal",
    "bad": "bad unsafe unhealthy weak risk risks disadvantage disadvantages cons drawbacks downsides illegal toxic "
           "harmful dangerous",
    "win": "win won wins succeed succeeded success",
    "lose": "lose lost loses fail failed failure",
    "ascending": "ascending ascend increasing-order",
    "descending": "descending descend decreasing-order",
    "awake": "awake",
    "asleep": "asleep sleeping",
    "alive": "alive",
    "dead": "dead die dies",
    "login": "login",
    "logout": "logout",
    "opt-in": "opt-in",
    "opt-out": "opt-out",
    "check-in": "check-in",
    "check-out": "check-out",
    "zoom-in": "zoom-in",
    "zoom-out": "zoom-out",
    "in": "into inside inbound incoming",
    "out": "out outside outbound outgoing",
    "tenant": "tenant tenants renter renters",
    "landlord": "landlord landlords",
    "employer": "employer employers",
    "employee": "employee employees",
    "buyer": "buyer buyers",
    "seller": "seller sellers vendor",
    "client": "client clients",
    "server": "server servers",
    "parent": "parent parents",
    "child": "child children kid kids",
    "sender": "sender",
    "receiver": "receiver recipient",
    "teacher": "teacher teachers",
    "student": "student students",
    "manager": "manager",
    "intern": "intern",
    "primary": "primary master leader",
    "replica": "replica replicas follower",
    "source": "source",
    "target": "target destination",
    "read": "read reading reads",
    "write": "write writing writes",
    "plus": "plus",
    "minus": "minus",
    "hot": "hot warm",
    "cold": "cold cool",
    "minute": "minute minutes",
    "hour": "hour hours hourly",
    "up": "up upward upwards",
    "down": "down downward downwards",
    "encode": "encode encoding encoded",
    "decode": "decode decoding decoded",
    "arrive": "arrive arrives arriving arrival arrivals arrived",
    "depart": "depart departs departing departure departures departed",
    "plaintiff": "plaintiff plaintiffs claimant",
    "defendant": "defendant defendants",
    "am": "a.m",
    "pm": "pm p.m",
    "day": "day days daily",
    "week": "week weeks weekly",
    "month": "month months monthly",
    "year": "year years yearly annual annually",
    "weekday": "weekday weekdays",
    "weekend": "weekend weekends",
    "adult": "adult adults",
    "vegan": "vegan",
    "upper": "upper",
    "happy": "happy happier happiest glad",
    "sad": "sad sadder unhappy depressed",
    "love": "love loves loved",
    "hate": "hate hates hated",
    "easy": "easy easier easiest",
    "hard": "hard harder hardest difficult",
    "fast": "fast faster fastest quick quicker quickly quickest rapid rapidly speedy",
    "slow": "slow slower slowest slowly",
    "morning": "morning mornings",
    "evening": "evening evenings",
    "night": "night nights nighttime overnight",
    "daytime": "daytime",
    "left": "left",
    "right": "right",
    "north": "north northern",
    "south": "south southern",
    "east": "east eastern",
    "west": "west western",
    "summer": "summer",
    "winter": "winter",
    "old": "old older oldest",
    "new": "new newer newest",
    "male": "male men man boy boys",
    "female": "female women woman girl girls",
    "past": "past",
    "future": "future",
    "cheap": "cheap cheaper cheapest inexpensive",
    "expensive": "expensive pricey",
    "raw": "raw uncooked",
    "cooked": "cooked",
    "wet": "wet",
    "dry": "dry",
    "light-theme": "light-mode light-theme",
    "dark-theme": "dark-mode dark-theme",
    "internal": "internal",
    "external": "external",
    "public": "public",
    "private": "private",
    "positive": "positive",
    "negative": "negative",
    "beginner": "beginner beginners novice",
    "advanced": "advanced expert experts",
    "brief": "brief briefly concise concisely short tldr",
    "detail": "detail detailed detailing thorough thoroughly in-depth",
    "vegetarian": "vegetarian",
}
POLARITY: dict[str, str] = {w: canon for canon, words in _POLAR_GROUPS.items() for w in words.split()}
POLARITY.update({"enable": "enable", "disable": "disable", "login": "login", "logout": "logout"})

# canonical polarity words that reverse each other; a word of a pair in one prompt and its partner in the other is
# never a hit. A polarity word without its partner counts as a changed content word.
_ANTONYM_PAIRS = """enable:disable add:remove increase:decrease max:min before:after start:stop open:close
encrypt:decrypt upload:download import:export buy:sell accept:reject lock:unlock show:hide join:leave true:false
above:below input:output first:last best:worst good:bad win:lose ascending:descending awake:asleep alive:dead
login:logout opt-in:opt-out check-in:check-out zoom-in:zoom-out in:out tenant:landlord employer:employee buyer:seller
client:server parent:child sender:receiver teacher:student manager:intern primary:replica source:target read:write
plus:minus hot:cold brief:detail upper:decrease morning:evening morning:night day:night daytime:night
left:right north:south east:west summer:winter old:new male:female past:future cheap:expensive raw:cooked wet:dry
light-theme:dark-theme internal:external public:private happy:sad love:hate easy:hard fast:slow positive:negative beginner:advanced weekday:weekend adult:child vegan:vegetarian hour:day hour:week hour:month hour:year day:week
day:month day:year week:month week:year month:year minute:hour minute:day minute:week minute:month minute:year
up:down encode:decode arrive:depart plaintiff:defendant am:pm"""
ANTONYMS: dict[str, set[str]] = {}
for _pair in _ANTONYM_PAIRS.split():
    _x, _y = _pair.split(":")
    ANTONYMS.setdefault(_x, set()).add(_y)
    ANTONYMS.setdefault(_y, set()).add(_x)

# prefix antonyms: un-, in-, im-, il-, dis- before a word the other prompt has ("safe" / "unsafe")
_NEG_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non")

QUANTIFIERS = {"all": "all", "every": "all", "each": "all", "entire": "all", "whole": "all", "everything": "all",
               "any": "any", "only": "only", "both": "both", "single": "1", "another": "other", "other": "other",
               "others": "other", "else": "other", "someone": "other"}

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000",
                      "million": "1000000", "billion": "1000000000", "second": "2nd", "third": "3rd",
                      "dozen": "12", "half": "0.5", "once": "1x", "twice": "2x"})

# terms right after these words fill a role ("from X to Y", "X than Y", "X beat Y")
DIRECTION_WORDS = {"to", "from", "into", "onto", "than", "vs", "versus", "against", "over", "toward", "towards",
                   "beat", "beats", "defeat", "defeated", "by", "then", "out", "in"}

# lower-case names users rarely capitalise: languages, platforms, tools, units (after ALIASES)
KNOWN = set("""python java javascript typescript rust go ruby php perl kotlin swift scala haskell elixir c++ c# c sql
mysql postgresql sqlite mongodb redis valkey kafka docker kubernetes helm terraform pulumi aws azure gcp linux windows
macos ios android ubuntu debian fedora excel git github gitlab bitbucket npm pip conda react vue angular django flask
spring node.js deno bash zsh powershell vim emacs chrome firefox safari slack zoom iphone ipad pixel samsung celsius
fahrenheit kelvin kilometer mile meter foot inch centimeter millimeter kilogram pound gram ounce fluid-ounce liter
milliliter gallon usd eur euro dollar gbp yen jpy btc bitcoin ethereum json yaml xml csv html css pdf png jpg utc gmt
est pst pandas numpy tcp udp http https dns tls ssh vpn wifi bluetooth two-factor multi-factor usa""".split())

STOPWORDS = set("""a an the is are was were be been being am do does did doing have has had having i me my we our you
your he she it its they them their this that these those what which who whom whose when where why how of on at
for with about as than then there here so and or but if can could should would will shall may might must please tell
explain give show let lets get got need want way ways some just also very really much many like use using used make
making made help know kind sort type quick question thanks thank hi hello hey okay ok anyone someone able possible
exactly actually basically simply good best easiest easy simple correct proper right properly way step steps
guide tutorial mean means meaning describe list summarize summary overview pls plz u ur thx kindly wondering
wonder curious something appreciate appreciated assist
based according documents document above below following text passage context provided given question answer
should would one between""".split())
STOPWORDS -= set(POLARITY) | set(QUANTIFIERS) | set(_NUMBER_WORDS) | NEGATIONS
STOPWORDS |= {"one", "best", "good", "above", "below", "following", "use", "used", "using", "to", "from", "in", "by",
              "then"}
# "one", "best", "good", "above", "below" are too often filler ("the best way", "the text below"); kept neutral

# content words that mean the same thing here (stem -> canonical stem)
SYNONYMS: dict[str, str] = {
    "create": "make", "build": "make", "generate": "make", "compose": "write", "author": "write", "wrote": "write",
    "writer": "write", "written": "write", "learn": "learn", "study": "learn", "look": "look", "see": "see",
    "view": "see", "check": "see", "find": "see", "identify": "see", "display": "see", "print": "see",
    "improve": "better", "better": "better", "enhance": "better", "cause": "cause", "reason": "cause",
    "happen": "cause", "picture": "image", "photo": "image", "film": "movie", "automobile": "car", "quit": "exit",
    "exist": "exist", "number": "count", "amount": "count", "rich": "high", "city": "city", "capital": "capital",
    "deduplicate": "duplicate", "dedupe": "duplicate", "travel": "speed", "tall": "tall",
    "people": "population", "live": "population", "needed": "need", "required": "need", "require": "need",
    "necessary": "need", "responsible": "owe", "repair": "repair", "able": "can", "center": "center",
    "centre": "center", "centering": "center", "colour": "color", "behaviour": "behavior", "novel": "book",
    "differ": "difference", "different": "difference", "differs": "difference", "vs": "difference",
    "install": "install", "setup": "install", "temperature": "temperature",
    "reach": "contact", "contact": "contact", "record": "record", "retain": "keep", "kept": "keep", "keep": "keep",
    "terms": "term", "rule": "rule", "regulation": "rule", "state": "rule",
    "deletion": "delete", "deleted": "delete", "approval": "approve", "approve": "approve",
}

_ANCHOR_VOCAB = frozenset(w for w in set(NEGATIONS) | set(POLARITY) | set(QUANTIFIERS) | DIRECTION_WORDS |
                          {"because", "instead", "rather", "between"} if w.isalpha() and len(w) >= 5)

_WORD = re.compile(r"`[^`]+`|\"[^\"]+\"|[A-Za-z0-9°][A-Za-z0-9_.+#/°-]*(?:'[a-z]+)?|[.?!;:,]")
_NUM = re.compile(r"^\d+(?:[.,:/-]\d+)*(?:%|st|nd|rd|th|x|k|m|gb|mb|kb|s|ms)?$")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
                         "\u0060": "`", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                         "\u2013": "-", "\u2014": " - ", "\u00a0": " "})
_WS = re.compile(r"[ \t\r\f\v]+")
_SENT_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"'(])")


def normalize(text: str) -> str:
    """Unicode compatibility form, straight quotes and apostrophes, single spaces, trimmed lines."""
    t = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    lines = [_WS.sub(" ", ln).strip() for ln in t.split("\n")]
    out: list[str] = []
    for ln in lines:  # keep paragraph breaks (one empty line), drop runs of them
        if ln or (out and out[-1]):
            out.append(ln)
    return "\n".join(out).strip()


# --- long prompts ----------------------------------------------------------------------------------------------------

QUESTION_MAX_WORDS = 120
"""A final paragraph up to this many words is the question; a longer one gives its last sentence."""
_LABEL = re.compile(r"^(?:user question|question|query|q|task)\s*[:\-]\s*", re.IGNORECASE)
# the last labelled question of a template ("Query: ...", "User question: ...", "Q: ...") and what follows it
_LABELLED = re.compile(r"(?:^|\n)[ \t>*_#]*(?:user question|question|query|q)[ \t*_]*:[ \t*_]*(?=\S)",
                       re.IGNORECASE)
# a template's trailing answer cue ("Answer:", "A:", "Response:") after the question
_ANSWER_CUE = re.compile(r"\n[ \t*_#]*(?:answer|a|response|helpful answer)[ \t*_]*:[ \t]*$", re.IGNORECASE)
# separator lines (----, ====, ***, ___, ~~~) split paragraphs like a blank line
_SEPARATOR = re.compile(r"^[ \t]*(?:[-=*_~#]\s*){3,}$", re.MULTILINE)

# greetings and pleasantries around a question: they never change what is asked
_LEAD = re.compile(r"^(?:(?:hi|hello|hey|dear \w+|good (?:morning|afternoon|evening))(?: there| all| team)?[,!.]*\s+|"
                   r"(?:please answer|quick question|quick q|question|could you tell me|can you tell me|please help|"
                   r"i'd appreciate your help|i would appreciate your help|help me out|help please)\s*[:,\-!.]\s*)+",
                   re.IGNORECASE)
_TAIL = re.compile(r"(?:\s*[.!]?\s*(?:thanks(?: a lot| in advance| so much)?|thank you(?: in advance| so much)?|"
                   r"cheers|much appreciated|ty)[.!]*)+\s*$", re.IGNORECASE)
_REPEATED_MARK = re.compile(r"([?!.])\1+")
_SPACED_MARK = re.compile(r"\s*[.,;:]?\s+([?!])$")
# a RAG template's instruction in front of the question: "Based only on the context above:", "Using the documents
# provided,", "According to the sources,"
_GROUNDING = re.compile(r"^(?:(?:answer\s+)?(?:based|relying)\s+(?:only\s+|solely\s+|strictly\s+)?on|using|"
                        r"according to|from|given)\s+(?:only\s+)?(?:the|these|this|those)\s+(?:\w+\s+)?"
                        r"(?:context|contexts|documents?|sources?|passages?|excerpts?|text|information|material|"
                        r"references?|snippets?)(?:\s+(?:above|below|provided|given|shown))?\s*[:,\-]\s*",
                        re.IGNORECASE)

TEMPLATE_WORDS = frozenset("""a above all an and answer answering any assistant background base based below
context contexts dear documents document excerpts following for from given good hello help hey hi i in information
is are knowledge material materials me morning afternoon evening my of on only or passage passages please provided
question questions read refer reference references relevant retrieved search sources source snippets the these
this to use using you your there team thanks thank cheers regards best here some query queries prior not do user
don't other if it that say know concise concisely cite""".split())
"""Words of a RAG template's instruction and greeting lines ("Hi! Please use the context below.", "Use the following
retrieved documents to answer.", "Context:"): a line made of these words only carries no document content."""


_OPENER = re.compile(r"^([^:?!.\n]{1,80}?)\s*(?::|\s-+\s|,)\s+")


_FILLER = (STOPWORDS | TEMPLATE_WORDS | {"above", "below"}) - NEGATIONS - set(QUANTIFIERS) - set(_NUMBER_WORDS)
"""Words a polite opener may consist of ("I was wondering", "could you please help me with something")."""


def _strip_opener(text: str) -> str:
    """``text`` without a polite opener of filler words only ("Could you please help me with something:", "I was
    wondering -", "Hey team, quick question -")."""
    m = _OPENER.match(text)
    if m and m.end() < len(text) and all(w in _FILLER for w in re.findall(r"[a-z']+|\d+", m.group(1).lower())):
        return text[m.end():]
    return text


def is_template_line(line: str) -> bool:
    """A short line of template words only (an instruction, a greeting, a bare "Context:" label)."""
    words = re.findall(r"[a-z']+|\d+", line.lower())
    return 0 < len(words) <= 16 and all(w in TEMPLATE_WORDS for w in words)


def clean_question(q: str) -> str:
    """The question without greetings, pleasantries, a template label or grounding instruction ("Based only on the
    context above:"), leading instruction sentences, repeated marks ("???") or a space before the final mark."""
    q = _LABEL.sub("", q.strip())
    prev = None
    while prev != q:
        prev = q
        q = _LEAD.sub("", q).strip()
        q = _TAIL.sub("", q).strip()
        q = _GROUNDING.sub("", q).strip()
        q = _LABEL.sub("", q).strip()
        q = _strip_opener(q)
        sents = _SENT_END.split(q)
        if len(sents) >= 2 and is_template_line(sents[0]):
            q = " ".join(sents[1:])
        elif len(sents) >= 2 and is_template_line(sents[-1]):  # "... ? Answer concisely."
            q = " ".join(sents[:-1])
    q = _REPEATED_MARK.sub(r"\1", q)
    q = _SPACED_MARK.sub(r"\1", q)
    return q or prev


@dataclass(frozen=True)
class Query:
    context: str
    """Everything before the question as its canonical word sequence (:func:`context_key`; empty for a one-part
    prompt); it must match exactly."""
    question: str
    """What is embedded and judged."""


def split(text: str, *, min_context_words: int = 40) -> Query:
    """Split a prompt into (context, question). A template's last labelled question ("Query:", "Question:", "Q:",
    "User question:", a trailing "Answer:" cue dropped) is the question; otherwise the last paragraph (separator lines
    count as paragraph breaks), or, for one long paragraph, its last sentence. The split holds when what precedes the
    question has at least ``min_context_words`` words."""
    t = _ANSWER_CUE.sub("", normalize(text)).rstrip()
    labelled = list(_LABELLED.finditer(t))
    m = labelled[-1] if labelled else None
    if m and len(t[: m.start()].split()) >= min_context_words and "\n\n" not in t[m.end():] \
            and len(t[m.end():].split()) <= QUESTION_MAX_WORDS:
        return Query(context_key(t[: m.start()]), clean_question(t[m.end():].replace("\n", " ")))
    t = _SEPARATOR.sub("", t)
    paras = [p for p in re.split(r"\n\s*\n", t) if p.strip()]
    while len(paras) >= 2 and all(is_template_line(ln) or _GREETING_LINE.match(ln) for ln in paras[-1].split("\n")):
        paras.pop()  # a closing instruction or sign-off after the question ("Answer only from the sources.")
    if len(paras) >= 2 and _question_first(paras[0], paras[-1], len(paras)):
        head, q = "\n\n".join(paras[1:]), paras[0]
    elif len(paras) >= 2:
        head, q = "\n\n".join(paras[:-1]), paras[-1]
    else:
        head, q = "", t
    if len(q.split()) > QUESTION_MAX_WORDS:
        sents = _SENT_END.split(q)
        if len(sents) >= 2:
            head = (head + "\n\n" if head else "") + " ".join(sents[:-1])
            q = sents[-1]
    if len(head.split()) < min_context_words:
        whole = (head + " " + q) if head else t
        return Query("", clean_question(whole.replace("\n", " ")))
    return Query(context_key(head), clean_question(q.replace("\n", " ")))


QUESTION_FIRST_MAX_WORDS = 30
"""A first paragraph up to this many words is the question when the prompt ends in a code block or a signature."""


def _question_first(first: str, last: str, n_paras: int) -> bool:
    """The question comes before the material ("Summarize this email: <email>", "Why does this fail? <code>"): the
    last paragraph asks nothing (no "?") and is a code block or a short sign-off, and the first one is short."""
    last = last.strip()
    if last.endswith("?") or len(first.split()) > QUESTION_FIRST_MAX_WORDS:
        return False
    return last.endswith("```") or (n_paras >= 3 and len(last.split()) <= 4)


_CONTEXT_WORD = re.compile(r"[a-z0-9\u00c0-\uffff]+(?:[.,:/'%-][a-z0-9\u00c0-\uffff]+)*%?")
_GREETING_LINE = re.compile(r"^\s*(?:hi|hello|hey|dear \w+|good (?:morning|afternoon|evening)|thanks|thank you|"
                            r"cheers)(?: there| all| team| in advance| so much)?[,!.]*\s*$", re.IGNORECASE)
_DOC_NOUN = r"(?:source|document|doc|passage|excerpt|chunk|reference|snippet|result|article|context|item|record)"
# a document's header label: "[Document 2]", "[2]", "Source 1:", "Document 3 -", "Passage #2.", "Context:", list marks
_DOC_LABEL = re.compile(rf"^[\s>*_#=|-]*(?:\[\s*(?:{_DOC_NOUN}\s*)?#?\s*\d+\s*\]|\(\s*\d+\s*\)|"
                        rf"{_DOC_NOUN}s?\s*#?\s*\d+\s*(?:[:.)\-]|(?=[\s*_#=]*$))|"
                        rf"(?:{_DOC_NOUN}s?|retrieved {_DOC_NOUN}s?|background|knowledge base)\s*:|"
                        r"\d{1,2}[.)](?=\s)|[\u2022\u2023\u25e6\u2043\u2219\u00b7\u25aa\u25cf])\s*",
                        re.IGNORECASE)


_TAG = re.compile(r"</?[A-Za-z][\w:-]*(?:\s+[\w:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))*\s*/?>")
"""An XML-like tag of a template ("<document index=\"1\">", "</context>")."""


def context_key(head: str) -> str:
    """The context as its canonical word sequence: lower case, markup (``###``, ``**``, ``===``, list marks and
    bullet glyphs, separator lines), document labels ("[Document 2]", "Source 1:", "Context:"), template lines
    (greetings, sign-offs, instructions such as "Use the following documents to answer", :func:`is_template_line`),
    punctuation between words and whitespace dropped. Formatting-only differences give the same key; any changed,
    added or removed word of a document (a number, a name, a "not") gives another."""
    lines = []
    for ln in _TAG.sub(" ", normalize(head)).split("\n"):
        prev = None
        while prev != ln:
            prev, ln = ln, _DOC_LABEL.sub("", ln, count=1)
            if not lines:  # a greeting or polite opener in front of the first document
                ln = _strip_opener(_LEAD.sub("", ln))
        if ln.strip() and not _GREETING_LINE.match(ln) and not is_template_line(ln):
            lines.append(ln.lower())
    return " ".join(_CONTEXT_WORD.findall("\n".join(lines)))


def context_digest(context: str) -> str:
    return hashlib.sha256(context.encode()).hexdigest()[:32] if context else ""


# --- per-prompt analysis ---------------------------------------------------------------------------------------------

def tokens(text: str) -> list[str]:
    """Word tokens of the normalised text: contractions split (``isn't`` -> ``is``, ``n't``), possessives dropped,
    trailing dots removed (``miles.`` -> ``miles``, ``1.30`` stays), sentence marks kept."""
    out: list[str] = []
    plain = "".join(c for c in unicodedata.normalize("NFKD", normalize(text)) if not unicodedata.combining(c))
    for t in _WORD.findall(plain):
        if t[0] not in "`\"" and len(t) > 1:
            t = t.rstrip(".") or t
        low = t.lower()
        if low.endswith("n't") and len(t) > 3:
            stem = t[:-3]
            out.extend([{"ca": "can", "wo": "will", "sha": "shall"}.get(stem.lower(), stem), "n't"])
        elif "'" in t and t[0] not in "`\"":
            out.append(t.split("'")[0])
        else:
            out.append(t)
    return out


_ISE = re.compile(r"(?<=\w{4})is(e|ed|es|ing|ation|ations)$")


def _one_edit(u: str, v: str, *, substitute: bool) -> bool:
    """Same first letter and one edit apart: a letter dropped or added (not at the end), two neighbours exchanged, or
    (when ``substitute``) one letter changed."""
    if u == v or not u or not v or u[0] != v[0] or abs(len(u) - len(v)) > 1 or u.startswith(v) or v.startswith(u):
        return False  # a last letter more or less is an inflection ("receive" / "receiver"), not a typo
    if len(u) == len(v):
        diff = [i for i in range(len(u)) if u[i] != v[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and u[diff[0]] == v[diff[1]] and u[diff[1]] == v[diff[0]]:
            return True
        return substitute and len(diff) == 1
    short, long_ = (u, v) if len(u) < len(v) else (v, u)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


@lru_cache(maxsize=8192)
def _anchor_typo(w: str) -> str | None:
    """The anchor word (negation, polarity, quantifier, direction word) a typo stands for: "wihtout" -> "without",
    "becasue" -> "because". Words of five letters or more; a changed letter only from seven letters on ("alter" is
    not "after")."""
    if len(w) < 5 or not w.isalpha() or w in _ANCHOR_VOCAB or w in STOPWORDS or w in KNOWN:
        return None
    near = [v for v in _ANCHOR_VOCAB if _one_edit(w, v, substitute=len(w) >= 7)]
    return near[0] if len(near) == 1 else None


def _raw_stem(w: str) -> str:
    w = _ISE.sub(r"iz\1", w)  # British -ise spellings ("summarise" / "summarize")
    for suf, rep, n in (("ies", "y", 5), ("sses", "ss", 5), ("ing", "", 6), ("ed", "", 5), ("es", "", 5),
                        ("s", "", 4), ("ly", "", 5)):
        if w.endswith(suf) and len(w) >= n and (suf != "s" or not w.endswith(("ss", "us", "is"))):
            w = w[: len(w) - len(suf)] + rep
            break
    return w[:-1] if w.endswith("e") and len(w) > 3 else w


_STEM_SYNONYMS = {_raw_stem(k): _raw_stem(v) for k, v in SYNONYMS.items()}


def _stem(w: str) -> str:
    """Crude stem (plural, -ing, -ed, -ly, final e) mapped through :data:`SYNONYMS`."""
    if w in SYNONYMS:
        return _raw_stem(SYNONYMS[w])
    r = _raw_stem(w)
    return _STEM_SYNONYMS.get(r, r)


def _is_entity(tok: str, sentence_start: bool) -> bool:
    if tok[0] in "`\"":
        return True
    low = tok.lower()
    if ALIASES.get(low, low) in KNOWN:
        return True
    has_alpha = any(c.isalpha() for c in tok)
    has_digit = any(c.isdigit() for c in tok)
    if has_alpha and has_digit:
        return True
    if any(c in tok for c in "_/#+") or (("." in tok) and has_alpha):
        return True
    if len(tok) >= 2 and tok.isupper():
        return True
    if len(tok) == 1 and tok.isupper() and tok != "I" and not sentence_start:  # a label: "drug A", "server B"
        return True
    if any(c.isupper() for c in tok[1:]):  # camelCase, iPhone
        return True
    if tok[0].isupper() and not sentence_start and low not in STOPWORDS and low not in POLARITY:
        return True
    return False


@dataclass(frozen=True)
class Analysis:
    nums: tuple[str, ...]
    negs: int
    polar: tuple[str, ...]
    quant: tuple[str, ...]
    ents: frozenset[str]
    words: frozenset[str]
    """Every lower-cased, aliased token and stem (to check that an entity of the other prompt occurs here)."""
    content: frozenset[str]
    seq: tuple[str, ...]
    """Key terms in order: entities, numbers, polarity words and content stems."""
    after: tuple[tuple[str, str], ...]
    """(direction word, the key term right after it)."""


@lru_cache(maxsize=4096)
def analyze(question: str) -> Analysis:
    toks = tokens(question)
    # sentence starts are decided on the surface tokens, then phrases are joined on the lower-cased ones
    starts = []
    start = True
    for t in toks:
        starts.append(start)
        start = t in ".?!;:"
    low = [t.lower().strip("`\"") for t in toks]
    joined: list[tuple[str, str, bool]] = []
    i = 0
    while i < len(toks):
        three = " ".join(low[i: i + 3])
        two = " ".join(low[i: i + 2])
        if three in PHRASES:
            joined.append((PHRASES[three], PHRASES[three], starts[i]))
            i += 3
        elif two in PHRASES:
            joined.append((PHRASES[two], PHRASES[two], starts[i]))
            i += 2
        elif low[i] == "am" and i and _NUM.match(low[i - 1]):  # "6:40 am" (not "I am")
            joined.append(("a.m", "a.m", starts[i]))
            i += 1
        else:
            joined.append((toks[i], low[i], starts[i]))
            i += 1
    nums: list[str] = []
    negs = 0
    polar: list[str] = []
    quant: list[str] = []
    ents: set[str] = set()
    words: set[str] = set()
    content: set[str] = set()
    seq: list[str] = []
    after: list[tuple[str, str]] = []
    pending: list[str] = []
    for surface, lw, at_start in joined:
        if lw in ".?!;:,":
            pending = [] if lw != "," else pending
            continue
        fixed = _anchor_typo(lw)
        if fixed:
            surface, lw = fixed, fixed
        if lw.startswith("non-") and len(lw) > 5:  # "non-refundable": a negation of "refundable"
            negs += 1
            surface, lw = surface[4:], lw[4:]
        a = ALIASES.get(lw, lw)
        if a.isalpha():
            a = _ISE.sub(r"iz\1", a)  # "summarise" is the stop word "summarize"
        words.add(a)
        words.add(_stem(a))
        words.add(a.replace("-", ""))
        key = None
        if _NUM.match(a):
            v = a.replace(",", "")
            nums.append(v)
            key = v
        elif a in _NUMBER_WORDS:
            nums.append(_NUMBER_WORDS[a])
            key = _NUMBER_WORDS[a]
        elif a in NEGATIONS:
            negs += 1
        elif a in QUANTIFIERS:
            quant.append(QUANTIFIERS[a])
        elif a in POLARITY:
            polar.append(POLARITY[a])
            key = POLARITY[a]
        elif _is_entity(surface, at_start):
            ents.add(a)
            key = _stem(a) if a.isalpha() else a  # the key a content word would have ("Pride" / "pride")
        elif a not in STOPWORDS and len(a) >= 2 and any(c.isalpha() for c in a):
            parts = [w for w in a.split("-") if w and w not in STOPWORDS] if "-" in a else [a]
            for w in parts or [a]:
                s = _stem(w)
                content.add(s)
                words.add(s)
            key = _stem(a) if len(parts) <= 1 else _stem(parts[-1])
        if key is not None:
            seq.append(key)
            for d in pending:
                after.append((d, key))
            pending = []
        if lw in DIRECTION_WORDS:
            pending.append(lw)
    # un-/in-/dis- antonyms of a word: "safe"/"unsafe" must not reduce to the same content
    return Analysis(tuple(sorted(nums)), negs, tuple(sorted(polar)), tuple(sorted(quant)), frozenset(ents),
                    frozenset(words), frozenset(content), tuple(seq), tuple(after))


def anchor_key(question: str) -> str:
    """The anchors :func:`rule_problem` requires to be equal (numbers, the count of negations, quantifiers): two
    questions with different keys can never be a hit, so the cache keeps them in different scopes."""
    x = analyze(question)
    return f"{','.join(x.nums)}|{x.negs}|{','.join(x.quant)}"


_LINK = {"of", "in", "on", "for", "the", "a", "an", "my", "your", "our", "its", "their", "this", "that", "-", "s"}


def _between(text_tokens: list[str], u: str, v: str) -> list[str] | None:
    """Lower-case tokens between the first key-term occurrences of ``u`` and ``v`` (in either order)."""
    keys = [_key_of(t) for t in text_tokens]
    try:
        i, j = keys.index(u), keys.index(v)
    except ValueError:
        return None
    lo, hi = min(i, j), max(i, j)
    return [t.lower() for t in text_tokens[lo + 1: hi]]


def _key_of(tok: str) -> str:
    low = ALIASES.get(tok.lower().strip("`\""), tok.lower().strip("`\""))
    if low in _NUMBER_WORDS:
        return _NUMBER_WORDS[low]
    if low in POLARITY:
        return POLARITY[low]
    return _stem(low) if low.isalpha() else low


def _exchanged(sa: list[str], sb: list[str]) -> tuple[str, str] | None:
    diff = [i for i, (x, y) in enumerate(zip(sa, sb)) if x != y]
    if len(diff) == 2 and sa[diff[0]] == sb[diff[1]] and sa[diff[1]] == sb[diff[0]]:
        return sa[diff[0]], sa[diff[1]]
    return None


def _pivot_swap(sa: list[str], sb: list[str], max_pivot: int = 3) -> bool:
    """A run of shared terms (up to ``max_pivot``) with the shared terms before and after it exchanged, once a
    common beginning and end are set aside: "X override Y" / "Y override X", "take X before or after Y, how long
    apart" / "take Y before or after X, how long apart"."""
    while sa and sb and sa[0] == sb[0]:
        sa, sb = sa[1:], sb[1:]
    while sa and sb and sa[-1] == sb[-1]:
        sa, sb = sa[:-1], sb[:-1]
    for size in range(1, max_pivot + 1):
        for k in range(1, len(sa) - size):
            pivot = sa[k: k + size]
            j = next((i for i in range(len(sb) - size + 1) if sb[i: i + size] == pivot), None)
            if j is None:
                continue
            before_a, after_a = set(sa[:k]), set(sa[k + size:])
            before_b, after_b = set(sb[:j]), set(sb[j + size:])
            if before_a and after_a and before_a == after_b and after_a == before_b:
                return True
    return False


def _prefix_antonym(x: frozenset[str], y: frozenset[str]) -> bool:
    for w in x - y:
        for p in _NEG_PREFIXES:
            if w.startswith(p) and w[len(p):] in y:
                return True
    return False


# --- the decision ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    threshold: float = 0.80
    """Cosine needed when both questions have the same content words (after normalisation)."""
    threshold_reworded: float = 0.90
    """Cosine needed when content words differ."""
    max_changed_words: int = 3
    """At most this many content words may differ (both sides counted) at ``threshold_reworded``."""
    threshold_strict: float = 0.93
    """Cosine needed when one question only adds content words (two or more, or one in a qualifying phrase), or
    when more than ``max_changed_words`` words differ."""


_DIFF = _stem("difference")


def _entity_in(e: str, words: frozenset[str]) -> bool:
    """An entity occurs in the other question: as a word, as a code without its hyphen ("W-2" / "W2"), or a quoted
    phrase as its words ("'good morning'" / good morning)."""
    if e in words or e.replace("-", "") in words:
        return True
    parts = [w for w in re.split(r"[\s\"`]+", e) if w]
    return len(parts) >= 2 and all(w in words or _stem(w) in words for w in parts)


def rule_problem(a: str, b: str) -> str | None:
    """Why two questions cannot be the same request (``None`` when no rule objects)."""
    x, y = analyze(a), analyze(b)
    if x.nums != y.nums:
        return "numbers"
    if x.negs != y.negs:
        return "negation"
    pa, pb = set(x.polar) - set(y.polar), set(y.polar) - set(x.polar)
    if any(ANTONYMS.get(w, set()) & pb for w in pa):
        return "polarity"
    if x.quant != y.quant:
        return "quantifier"
    if not all(_entity_in(e, y.words) for e in x.ents) or not all(_entity_in(e, x.words) for e in y.ents):
        return "entities"
    wa, wb = _wh(a), _wh(b)
    if wa and wb and wa != wb:  # "When was it built?" / "Why was it built?"
        return "question word"
    if _prefix_antonym(x.content | x.words, y.content | y.words) or \
            _prefix_antonym(y.content | y.words, x.content | x.words):
        return "polarity"
    shared = set(x.seq) & set(y.seq)
    sa = [w for w in dict.fromkeys(x.seq) if w in shared]
    sb = [w for w in dict.fromkeys(y.seq) if w in shared]
    symmetric = _DIFF in x.content and _DIFF in y.content  # "A vs B" asks the same as "B vs A"
    if sa != sb and not symmetric:
        pair = _exchanged(sa, sb)
        if pair:
            links = [_between(tokens(t), *pair) for t in (a, b)]
            if not any(bt is not None and set(bt) <= _LINK for bt in links):
                return "role swap"
        elif _pivot_swap(sa, sb):
            return "role swap"
    if not symmetric:
        # the same terms, but one fills a second role in one prompt and the other in the other ("lender ... assume
        # we represent the lender" / "... the borrower")
        ca = Counter(w for w in x.seq if w in shared)
        cb = Counter(w for w in y.seq if w in shared)
        if ca - cb and cb - ca:
            return "role swap"
    after_a: dict[str, set[str]] = {}
    after_b: dict[str, set[str]] = {}
    for d, term in x.after:
        after_a.setdefault(d, set()).add(term)
    for d, term in y.after:
        after_b.setdefault(d, set()).add(term)
    for d in after_a.keys() & after_b.keys() if not symmetric else ():
        ta = (after_a[d] - after_b[d]) & shared
        tb = (after_b[d] - after_a[d]) & shared
        if ta and tb:
            return "direction"
    return None


SOFT_POLARITY = {"good", "best", "in", "easy", "up", "down"}
"""Polarity words that are mostly filler ("the best way", "translate into") unless the other prompt has the
antonym: they are not counted as changed words."""


_WH = {"who": "who", "whom": "who", "whose": "who", "when": "when", "where": "where", "why": "why"}


def _wh(text: str) -> set[str]:
    return {_WH[t.lower()] for t in tokens(text) if t.lower() in _WH}


def _only(x: Analysis, y: Analysis) -> set[str]:
    """Content words and unpaired polarity words of ``x`` that ``y`` lacks; a word that is an entity in ``y`` (a
    name typed in lower case, or capitalised at the start of a sentence) counts as shared, and so does a typo of a
    word of ``y`` (:func:`_typo`)."""
    y_ents = y.ents | {_stem(w) for e in y.ents for w in e.split("-") if w.isalpha()}
    only = x.content - y.content - y_ents
    only = {w for w in only if not any(_typo(w, v) for v in y.content - x.content)}
    return only | ((set(x.polar) - set(y.polar)) - SOFT_POLARITY)


def _typo(u: str, v: str) -> bool:
    """One edit (a letter dropped, added, changed, or two neighbours exchanged) between two words of at least six
    letters with the same first letter: "recieve" / "receive", "reimbursment" / "reimbursement"."""
    return min(len(u), len(v)) >= 6 and _one_edit(u, v, substitute=True)


def align_typos(a: str, b: str) -> str:
    """``b`` with each word of six or more letters that is one edit from a word of ``a`` (and not in ``a`` itself)
    written as in ``a``: a typo must not hide a swapped role or a changed term ("itnerviewer" / "interviewer")."""
    words_a = {w.lower() for w in re.findall(r"[A-Za-z]{6,}", a)}

    def fix(m: re.Match) -> str:
        w = m.group(0)
        low = w.lower()
        if low in words_a:
            return w
        near = [v for v in words_a if _typo(low, v)]
        return near[0] if len(near) == 1 else w

    return re.sub(r"[A-Za-z]{6,}", fix, b)


def changed_words(a: str, b: str) -> int:
    """Content words (and unpaired polarity words) found in one question only (:func:`_only`, both sides)."""
    x, y = analyze(a), analyze(b)
    return len(_only(x, y)) + len(_only(y, x))


def added_words(a: str, b: str) -> set[str]:
    """The content words one question adds when the other has none of its own ("Side effects of lisinopril" /
    "... in elderly patients" -> {elderly, patient}); empty when both or neither add words (a rewording)."""
    x, y = analyze(a), analyze(b)
    oa, ob = _only(x, y), _only(y, x)
    return set() if oa and ob else oa | ob


# words that attach a qualifying phrase to a request ("for contractors", "in elderly patients", "since 2023")
QUALIFIER_WORDS = {"for", "in", "with", "on", "from", "across", "by", "after", "before", "during", "since", "without",
                   "under", "over", "at", "within", "among", "per", "except", "via", "where", "when", "that", "which",
                   "who", "whose", "if", "unless", "until", "while"}


def _qualifier_added(a: str, b: str, added: set[str]) -> bool:
    """The added words stand in a qualifying phrase before or after everything both questions share: a qualifier
    word followed by an added word ("summarize our expense policy *for contractors*")."""
    x, y = analyze(a), analyze(b)
    shared = set(x.seq) & set(y.seq)
    for text in (a, b):
        toks = [t for t in tokens(text) if t not in ".?!;:,"]
        keys = [_key_of(t) for t in toks]
        pos = [i for i, k in enumerate(keys) if k in shared]
        if not pos:
            continue
        for lo, hi in ((0, pos[0]), (pos[-1] + 1, len(toks))):
            open_ = False
            for i in range(lo, hi):
                low = toks[i].lower()
                if low in QUALIFIER_WORDS:
                    open_ = True
                elif open_ and keys[i] in added:
                    return True
    return False


def _conjunction_added(a: str, b: str) -> bool:
    """One question extends a term of the other with "and"/"or" plus new content ("records" / "records and
    backups"): a wider scope, not a rewording."""
    x, y = analyze(a), analyze(b)
    for small, big, text in ((x, y, b), (y, x, a)):
        added = big.content - small.content - small.ents
        if not added or not small.content <= big.content | big.ents:
            continue
        low = [_key_of(t) if t.lower() not in ("and", "or", "&", "plus") else "&" for t in tokens(text)]
        for i, t in enumerate(low):
            if t == "&" and 0 < i < len(low) - 1:
                left = next((w for w in reversed(low[:i]) if w not in STOPWORDS), None)
                right = next((w for w in low[i + 1:] if w not in STOPWORDS), None)
                if {left, right} & added:
                    return True
    return False


# modifiers that narrow what is asked for ("free attractions" is a subset of "attractions"); one prompt having one
# the other lacks is a scope change, never a rewording
RESTRICTIVE = {"free", "paid", "vegan", "vegetarian", "gluten-free", "organic", "official", "used", "remote", "online",
               "offline", "international", "domestic", "beginner", "advanced", "cheap", "luxury", "budget", "legal",
               "illegal", "public", "private", "open-source", "commercial", "personal", "student", "senior"}


def _restricted(a: str, b: str) -> bool:
    wa = {t.lower() for t in tokens(a)} & RESTRICTIVE
    wb = {t.lower() for t in tokens(b)} & RESTRICTIVE
    return wa != wb


def decide(a: str, b: str, cosine: float, policy: Policy = Policy()) -> tuple[bool, str]:
    """(hit, reason) for a cached question ``a`` and a new question ``b`` whose embeddings have ``cosine``."""
    if cosine < policy.threshold:
        return False, "similarity"
    b = align_typos(a, b)
    problem = rule_problem(a, b)
    if problem:
        return False, problem
    n = changed_words(a, b)
    if n and (_conjunction_added(a, b) or _restricted(a, b)):
        return False, "scope"
    if n == 0:
        return True, "same content"
    added = added_words(a, b)
    if n > policy.max_changed_words and (added or cosine < policy.threshold_strict):
        return False, "changed words"  # many words reworded on both sides may pass the strict bar; added never
    if added and (len(added) >= 2 or _qualifier_added(a, b, added)) and cosine < policy.threshold_strict:
        return False, "scope (added words)"
    if cosine < policy.threshold_reworded:
        return False, "similarity (reworded)"
    return True, "reworded"


def compatible(a: str, b: str) -> bool:
    """The rules alone (no cosine): both prompts split, the same context, and no rule objects to the questions."""
    qa, qb = split(a), split(b)
    return qa.context == qb.context and rule_problem(qa.question, align_typos(qa.question, qb.question)) is None
