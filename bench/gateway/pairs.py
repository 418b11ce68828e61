"""A labelled prompt-pair set for semantic-cache precision/recall: paraphrases (should hit) and hard negatives
(negation, numbers, entities, swapped roles/direction, same-topic different question) that must not.

Built from hand-written templates and fillers (written for this project, 2026-11). It is small and templated; it
measures the failure classes known to break cosine-only caches, not general traffic.
"""

from __future__ import annotations

import itertools

PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What is the capital of France?", "Tell me the capital of France"),
    ("How to undo the last git commit", "How can I undo my last git commit?"),
    ("What are the symptoms of the flu?", "What symptoms does the flu cause?"),
    ("How do I make a cup of green tea?", "How do you make a cup of green tea?"),
    ("What's the best way to learn Spanish?", "What is the best way to learn Spanish?"),
    ("Give me a recipe for pancakes", "Share a recipe for pancakes"),
    ("How long should I boil an egg?", "How long do I need to boil an egg?"),
    ("Explain what a hash table is", "What is a hash table?"),
    ("What does HTTP stand for?", "What is HTTP short for?"),
    ("How can I improve my sleep?", "How do I improve my sleep?"),
    ("Write a haiku about autumn leaves", "Compose a haiku about autumn leaves"),
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("How do I center a div in CSS?", "How can I center a div with CSS?"),
    ("Why is the sky blue?", "Why does the sky look blue?"),
    ("Summarize the plot of Hamlet", "Give me a summary of the plot of Hamlet"),
    ("How do I merge two dictionaries in Python?", "How can I merge two dictionaries in Python?"),
    ("What is the difference between RAM and storage?", "What's the difference between RAM and storage?"),
    ("How do I delete a branch in git?", "How can I delete a git branch?"),
    ("What causes inflation?", "What are the causes of inflation?"),
    ("Recommend a good science fiction novel", "Can you recommend a good science fiction novel?"),
    ("How do I clean a cast iron pan?", "What's the way to clean a cast iron pan?"),
    ("Translate 'good morning' into German", "How do you say 'good morning' in German?"),
    ("What is photosynthesis?", "Explain photosynthesis"),
    ("How many continents are there?", "How many continents exist?"),
    ("How do I list files in a directory in Linux?", "How can I list the files in a directory on Linux?"),
    ("What is a black hole?", "Can you explain what a black hole is?"),
    ("Tips for a job interview", "Give me some tips for a job interview"),
    ("How do I write a cover letter?", "How should I write a cover letter?"),
    ("What is machine learning?", "Explain machine learning to me"),
]

# (template, fillers for {x}): a paraphrase pair per filler, plus traps built below from the same slots
PARA_TEMPLATES = [
    ("How do I enable {x} on GitHub?", "How can I turn on {x} on GitHub?"),
    ("How do I install {x} on Ubuntu?", "What's the way to install {x} on Ubuntu?"),
    ("What is {x} used for?", "What do people use {x} for?"),
    ("How do I learn {x} quickly?", "How can I learn {x} fast?"),
]
SLOT = ["2FA", "Docker", "Redis", "Terraform", "Kubernetes", "Postgres", "Nginx", "Node.js"]

NEGATION = [
    ("How do I enable {x} on GitHub?", "How do I disable {x} on GitHub?"),
    ("How do I turn on {x} logging?", "How do I turn off {x} logging?"),
    ("Can I run {x} with root privileges?", "Can I run {x} without root privileges?"),
    ("Why is my {x} build failing?", "Why isn't my {x} build failing?"),
    ("Should I add {x} to the project?", "Should I remove {x} from the project?"),
    ("How do I start the {x} service?", "How do I stop the {x} service?"),
]
NUMBERS = [
    ("Upgrade {x} to version 1.30", "Upgrade {x} to version 1.31"),
    ("Set the {x} connection limit to 100", "Set the {x} connection limit to 1000"),
    ("What changed in {x} 2023?", "What changed in {x} 2024?"),
    ("Allocate 4 GB of memory to {x}", "Allocate 8 GB of memory to {x}"),
    ("Run {x} on port 8080", "Run {x} on port 9090"),
]
ENTITIES = [
    ("How do I sort a list in {a}?", "How do I sort a list in {b}?"),
    ("What is the population of {a}?", "What is the population of {b}?"),
    ("Summarize the latest news about {a}", "Summarize the latest news about {b}"),
    ("What is the weather like in {a} in May?", "What is the weather like in {b} in May?"),
]
ENTITY_PAIRS = [("python", "java"), ("Paris", "Berlin"), ("Apple", "Google"), ("Tokyo", "Osaka"),
                ("Rust", "Go"), ("Canada", "Mexico"), ("Microsoft", "Amazon"), ("javascript", "typescript")]
ROLES = [
    ("Did {a} beat {b} in the final?", "Did {b} beat {a} in the final?"),
    ("Convert 10 {a} to {b}", "Convert 10 {b} to {a}"),
    ("Translate this sentence from {a} to {b}", "Translate this sentence from {b} to {a}"),
    ("Is {a} bigger than {b}?", "Is {b} bigger than {a}?"),
    ("How do I migrate from {a} to {b}?", "How do I migrate from {b} to {a}?"),
]
ROLE_PAIRS = [("Brazil", "Germany"), ("km", "miles"), ("French", "English"), ("celsius", "fahrenheit"),
              ("MySQL", "Postgres"), ("Spain", "Italy")]
SAME_TOPIC = [
    ("How do I create a git branch?", "How do I rename a git branch?"),
    ("What is the capital of France?", "What is the currency of France?"),
    ("How do I read a file in Python?", "How do I write a file in Python?"),
    ("What are the benefits of running?", "What are the risks of running?"),
    ("How do I bake bread at home?", "How do I store bread at home?"),
    ("Explain how vaccines work", "Explain how antibiotics work"),
]


def build() -> list[tuple[str, str, bool, str]]:
    """(cached prompt, new prompt, should hit, category)."""
    out: list[tuple[str, str, bool, str]] = [(a, b, True, "paraphrase") for a, b in PARAPHRASES]
    for (ta, tb), x in itertools.product(PARA_TEMPLATES, SLOT):
        out.append((ta.format(x=x), tb.format(x=x), True, "paraphrase"))
    for (ta, tb), x in itertools.product(NEGATION, SLOT):
        out.append((ta.format(x=x), tb.format(x=x), False, "negation"))
    for (ta, tb), x in itertools.product(NUMBERS, SLOT):
        out.append((ta.format(x=x), tb.format(x=x), False, "number"))
    for (ta, tb), (a, b) in itertools.product(ENTITIES, ENTITY_PAIRS):
        out.append((ta.format(a=a), tb.format(b=b), False, "entity"))
    for (ta, tb), (a, b) in itertools.product(ROLES, ROLE_PAIRS):
        out.append((ta.format(a=a, b=b), tb.format(a=a, b=b), False, "role"))
    out += [(a, b, False, "same-topic") for a, b in SAME_TOPIC]
    return out
