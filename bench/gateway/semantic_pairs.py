"""The semantic cache's development set: labelled prompt pairs, generated deterministically from templates and
fillers written for this project (2026-12), plus hand-written pairs.

Writes ``bench/gateway/semantic_eval/dev.jsonl``: one ``{"a", "b", "same", "category"}`` object per line, categories
paraphrase, long_near_duplicate, negation, number_change, entity_swap, role_swap, scope_change, unrelated. ``a`` is
the cached prompt, ``b`` the new one. Long prompts are RAG-style: 300-2,000 words of documents, the question last.
Every pair also carries ``split``: ``tune`` (looked at while tuning) or ``check`` (a third kept aside, only scored).

Run: .venv/bin/python bench/gateway/semantic_pairs.py   (rewrites the file; same output every run)
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "semantic_eval" / "dev.jsonl"

# --- paraphrase groups: every pair inside a group asks the same thing --------------------------------------------
PARA_GROUPS: list[list[str]] = [
    ["How do I reset my password?", "How can I reset my password?", "what's the way to reset my password"],
    ["How do I parse JSON in JavaScript?", "how to parse json in JS", "Parsing JSON in JavaScript: how?"],
    ["How do I connect to Postgres from Python?", "How can I connect to PostgreSQL from Python?",
     "connecting to a postgres database from python"],
    ["How do I read a file line by line in Go?", "How can I read a file line by line in golang?",
     "Read a file line-by-line in Go"],
    ["How many grams are in 8 ounces?", "How many grams is 8 oz?", "8 ounces in grams?"],
    ["What is the capital of Australia?", "Tell me the capital of Australia.", "Australia's capital city is what?"],
    ["Why is the sky blue?", "Why does the sky look blue?", "what makes the sky blue"],
    ["How do I undo the last git commit?", "How can I undo my last commit in git?", "undo last git commit"],
    ["What are the symptoms of the flu?", "What symptoms does the flu cause?", "flu symptoms?"],
    ["How long should I boil an egg for a soft yolk?", "For a soft yolk, how long do I boil an egg?",
     "How long do I need to boil an egg to get a soft yolk?"],
    ["What is the difference between TCP and UDP?", "How does TCP differ from UDP?",
     "Explain the difference between TCP and UDP"],
    ["How do I center a div in CSS?", "How can I center a div with CSS?", "centering a div in css"],
    ["What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?",
     "What temperature does water boil at at sea level?"],
    ["How do I merge two dictionaries in Python?", "How can I merge two dicts in Python?",
     "Merge two Python dictionaries - how?"],
    ["Summarize the plot of Hamlet.", "Give me a summary of the plot of Hamlet", "Can you summarize Hamlet's plot?"],
    ["How do I list files in a directory on Linux?", "How can I list the files in a directory in Linux?",
     "Linux: list the files in a directory"],
    ["What causes inflation?", "What are the causes of inflation?", "Why does inflation happen?"],
    ["Recommend a good science fiction novel.", "Can you recommend a good sci-fi novel?",
     "What's a good science fiction novel to read?"],
    ["How do I clean a cast iron pan?", "What's the best way to clean a cast iron pan?",
     "How should I clean a cast-iron pan?"],
    ["How do you say good morning in German?", "Translate good morning into German.",
     "What is good morning in German?"],
    ["What is photosynthesis?", "Explain photosynthesis.", "Can you explain what photosynthesis is?"],
    ["How many continents are there?", "How many continents exist?", "What is the number of continents?"],
    ["What is a black hole?", "Can you explain what a black hole is?", "Explain black holes to me."],
    ["Give me some tips for a job interview.", "Tips for a job interview?", "What are some job interview tips?"],
    ["How do I write a cover letter?", "How should I write a cover letter?", "How to write a good cover letter"],
    ["What is machine learning?", "Explain machine learning to me.", "Can you explain what machine learning is?"],
    ["How do I install Docker on Ubuntu?", "How can I install Docker on Ubuntu?",
     "What's the way to install docker on ubuntu?"],
    ["How do I enable two-factor authentication on GitHub?", "How can I turn on two-factor authentication on GitHub?",
     "Turn on 2-factor authentication on GitHub: how?"],
    ["How do I check which version of Node.js is installed?", "How can I see what Node.js version I have installed?",
     "check installed node.js version"],
    ["What does HTTP stand for?", "What is HTTP short for?", "HTTP stands for what?"],
    ["How do I improve my sleep?", "How can I sleep better?", "Ways to improve my sleep?"],
    ["Write a haiku about autumn leaves.", "Compose a haiku about autumn leaves.", "Can you write a haiku on autumn leaves?"],
    ["How do I delete a branch in git?", "How can I delete a git branch?", "delete a branch in Git"],
    ["What is the population of Canada?", "How many people live in Canada?", "What's Canada's population?"],
    ["How do I create a virtual environment in Python?", "How can I make a Python virtual environment?",
     "create a python virtualenv"],
    ["What is a hash table?", "Explain what a hash table is.", "Can you explain hash tables?"],
    ["How do I make pancakes from scratch?", "Give me a recipe for pancakes from scratch.",
     "How can I make pancakes from scratch?"],
    ["What's the fastest way to learn Spanish?", "What is the quickest way to learn Spanish?",
     "How can I learn Spanish fast?"],
    ["How do I convert a string to an integer in Java?", "How can I convert a String to an int in Java?",
     "Java: convert string to integer"],
    ["Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?", "Pride and Prejudice was written by whom?"],
    ["How do I sort a list of dictionaries by a key in Python?", "How can I sort a list of dicts by a key in Python?",
     "Sort a Python list of dictionaries by one key"],
    ["How do I change the default shell on macOS?", "How can I change my default shell on macOS?",
     "Changing the default shell on a Mac"],
    ["What's the time complexity of binary search?", "What is the time complexity of a binary search?",
     "Binary search time complexity?"],
    ["How do I remove duplicates from a list in Python?", "How can I remove duplicate items from a Python list?",
     "Deduplicate a list in Python"],
    ["What is the tallest mountain in the world?", "Which mountain is the tallest in the world?",
     "What's the world's tallest mountain?"],
    ["How do I take a screenshot on Windows?", "How can I take a screenshot in Windows?", "Windows screenshot: how?"],
    ["What foods are high in iron?", "Which foods are rich in iron?", "List foods that are high in iron."],
    ["How do I back up my iPhone?", "How can I back up an iPhone?", "What's the way to back up my iPhone?"],
    ["Explain how vaccines work.", "How do vaccines work?", "Can you explain how vaccines work?"],
    ["How do I find the process listening on a port in Linux?", "How can I see which process is listening on a port on Linux?",
     "Linux: find the process that is listening on a port"],
    ["What are the benefits of meditation?", "What benefits does meditation have?", "Why is meditation good for you?"],
    ["How do I get the length of an array in JS?", "How can I get an array's length in JavaScript?",
     "length of an array in javascript"],
    ["How do I create an index in PostgreSQL?", "How can I create an index in Postgres?",
     "Creating an index in postgres"],
    ["How do I exit vim?", "How can I quit Vim?", "how do you exit vim"],
    ["What is the speed of light?", "How fast does light travel?", "What's the speed of light?"],
    ["How do I make cold brew coffee at home?", "How can I make cold brew coffee at home?",
     "Making cold brew coffee at home: how?"],
    ["What does a landlord have to repair?", "What repairs is a landlord responsible for?",
     "Which repairs does a landlord have to make?"],
    ["How do I sort an array in ascending order in JavaScript?", "How can I sort a JS array in ascending order?",
     "Sort an array ascending in JavaScript"],
]

# --- templated paraphrases: (frame A, frame B) x fillers -----------------------------------------------------------
PARA_FRAMES = [
    ("How do I {v} in {t}?", "How can I {v} in {t}?"),
    ("What's the best way to {v} in {t}?", "What is the best way to {v} in {t}?"),
    ("How do I {v} in {t}?", "In {t}, how do I {v}?"),
    ("Show me how to {v} in {t}.", "How do you {v} in {t}?"),
    ("How do I {v} in {t}?", "how do i {v} in {t}"),
    ("Can you explain how to {v} in {t}?", "Explain how to {v} in {t}."),
]
PARA_FILL = [("reverse a string", "Python"), ("read environment variables", "Go"), ("write a unit test", "Rust"),
             ("make an HTTP request", "JavaScript"), ("format a date", "Java"), ("handle exceptions", "C#"),
             ("join two tables", "SQL"), ("define a class", "TypeScript"), ("open a file", "Ruby"),
             ("create a thread", "Kotlin"), ("split a string", "PHP"), ("define a function", "Haskell"),
             ("round a number", "Excel"), ("loop over a map", "Scala"), ("parse command line arguments", "Bash"),
             ("add a column", "pandas")]
ALIAS_PAIRS = [("JavaScript", "JS"), ("Postgres", "PostgreSQL"), ("Go", "golang"), ("Kubernetes", "k8s"),
               ("Python", "python"), ("TypeScript", "TS"), ("Node.js", "Node"), ("macOS", "Mac OS")]
ALIAS_FRAMES = [("How do I {v} in {t}?", "How do I {v} in {u}?"),
                ("What's the best way to {v} in {t}?", "What is the best way to {v} in {u}")]
ALIAS_VERBS = {"JavaScript": ["debounce a function", "deep copy an object"], "Postgres": ["create a user", "list all tables"],
               "Go": ["parse JSON", "run tests in parallel"], "Kubernetes": ["restart a deployment", "view pod logs"],
               "Python": ["read a CSV file", "measure execution time"], "TypeScript": ["declare an enum", "type a callback"],
               "Node.js": ["read a file", "start an HTTP server"], "macOS": ["show hidden files", "flush the DNS cache"]}
UNIT_PARA = [("How many {u1} are in {n} {u2}?", "How many {u1} is {n} {u2b}?")]
UNIT_FILL = [("grams", "ounces", "oz"), ("kilometers", "miles", "mi"), ("centimeters", "inches", "inch"),
             ("milliliters", "fluid ounces", "fl oz"), ("kilograms", "pounds", "lbs")]

# --- negation / polarity -----------------------------------------------------------------------------------------
NEG_FRAMES = [
    ("How do I enable {x}?", "How do I disable {x}?"),
    ("How do I turn on {x}?", "How do I turn off {x}?"),
    ("Is it safe to use {x}?", "Is it unsafe to use {x}?"),
    ("Why is {x} working?", "Why isn't {x} working?"),
    ("Why is {x} working?", "Why isn’t {x} working?"),
    ("Should I use {x}?", "Should I not use {x}?"),
    ("Can I run {x} with root privileges?", "Can I run {x} without root privileges?"),
    ("What happens if I install {x}?", "What happens if I uninstall {x}?"),
    ("How do I log in to {x}?", "How do I log out of {x}?"),
    ("How do I opt in to {x}?", "How do I opt out of {x}?"),
    ("List the reasons to use {x}.", "List the reasons not to use {x}."),
    ("Which settings does {x} allow?", "Which settings does {x} forbid?"),
]
NEG_FILL = ["dark mode in Slack", "automatic updates on Windows", "the firewall on Ubuntu", "location tracking on Android",
            "Bluetooth on my laptop", "cookies in Chrome", "Docker Desktop", "the VPN", "two-factor authentication",
            "auto-save in Word"]
NEG_HAND = [
    ("Sort the list in ascending order.", "Sort the list in descending order."),
    ("Is the patient awake after surgery?", "Is the patient asleep after surgery?"),
    ("What should I do if my cat is eating?", "What should I do if my cat is not eating?"),
    ("Which foods are safe for dogs?", "Which foods are toxic for dogs?"),
    ("Why does my code compile?", "Why doesn't my code compile?"),
    ("Why does my code compile?", "Why doesn’t my code compile?"),
    ("Is coffee good for your heart?", "Is coffee bad for your heart?"),
    ("How do I zoom in on a Mac?", "How do I zoom out on a Mac?"),
    ("What are the advantages of remote work?", "What are the disadvantages of remote work?"),
    ("Can I drink alcohol while taking ibuprofen?", "Can't I drink alcohol while taking ibuprofen?"),
    ("Which countries allow dual citizenship?", "Which countries prohibit dual citizenship?"),
    ("How do I make the text visible?", "How do I make the text invisible?"),
    ("What makes a strong password?", "What makes a weak password?"),
    ("How do I check in for my flight online?", "How do I check out of my hotel online?"),
    ("Explain why the experiment succeeded.", "Explain why the experiment failed."),
    ("How do I lock my screen on Windows?", "How do I unlock my screen on Windows?"),
    ("How do I include hidden files in the search?", "How do I exclude hidden files from the search?"),
    ("Give examples of legal tax deductions.", "Give examples of illegal tax deductions."),
    ("Is the store open on Sunday?", "Is the store closed on Sunday?"),
    ("How do I keep my plants alive in winter?", "Why do my plants die in winter?"),
]

# --- number changes ------------------------------------------------------------------------------------------------
NUM_FRAMES = [
    ("Convert {n} {u} to metric.", "Convert {m} {u} to metric."),
    ("Set the {x} timeout to {n} seconds.", "Set the {x} timeout to {m} seconds."),
    ("What happened in {x} in {y}?", "What happened in {x} in {z}?"),
    ("Upgrade {x} to version {v1}.", "Upgrade {x} to version {v2}."),
    ("Give me {w1} ideas for a {x} project.", "Give me {w2} ideas for a {x} project."),
    ("Is {n} a prime number?", "Is {m} a prime number?"),
    ("What is {n} percent of {k}?", "What is {m} percent of {k}?"),
    ("How do I run {x} on port {p1}?", "How do I run {x} on port {p2}?"),
    ("Plan a {n}-day trip to {c}.", "Plan a {m}-day trip to {c}."),
    ("What was the top song of {y}?", "What was the top song of {z}?"),
]
NUM_X = ["Redis", "Nginx", "PostgreSQL", "Kafka", "Django", "the load balancer", "Grafana", "Jenkins"]
CITIES = ["Paris", "Tokyo", "Lisbon", "Rome", "Chicago", "Cairo", "Seoul", "Mexico City", "Oslo", "Dublin"]
WORDS_NUM = ["three", "five", "seven", "ten", "twelve"]

# --- entity swaps ----------------------------------------------------------------------------------------------------
ENT_FRAMES = [
    ("How do I sort a list in {a}?", "How do I sort a list in {b}?"),
    ("What is the population of {c}?", "What is the population of {d}?"),
    ("What's the weather like in {c} in May?", "What's the weather like in {d} in May?"),
    ("Who founded {o}?", "Who founded {q}?"),
    ("How do I install {a} on macOS?", "How do I install {b} on macOS?"),
    ("What is the best time of year to visit {c}?", "What is the best time of year to visit {d}?"),
    ("Summarize the history of {o}.", "Summarize the history of {q}."),
    ("How much protein is in {f}?", "How much protein is in {g}?"),
]
LANG_PAIRS = [("Python", "Java"), ("Rust", "Go"), ("JavaScript", "TypeScript"), ("Ruby", "PHP"), ("C++", "C"),
              ("Kotlin", "Swift")]
PLACE_PAIRS = [("France", "Germany"), ("Tokyo", "Osaka"), ("Canada", "Mexico"), ("Kenya", "Nigeria"),
               ("Peru", "Chile"), ("Vienna", "Prague")]
ORG_PAIRS = [("Microsoft", "Apple"), ("Toyota", "Honda"), ("the Red Cross", "UNICEF"), ("Netflix", "Spotify"),
             ("Nike", "Adidas"), ("IKEA", "Lego")]
FOOD_PAIRS = [("an egg", "a banana"), ("chicken breast", "salmon"), ("tofu", "tempeh"), ("lentils", "rice"),
              ("almonds", "peanuts"), ("greek yogurt", "cottage cheese")]

# --- role / direction swaps -------------------------------------------------------------------------------------------
ROLE_FRAMES = [
    ("Did {a} beat {b} in the final?", "Did {b} beat {a} in the final?"),
    ("Convert 10 {a} to {b}.", "Convert 10 {b} to {a}."),
    ("Translate this sentence from {a} to {b}.", "Translate this sentence from {b} to {a}."),
    ("Is {a} bigger than {b}?", "Is {b} bigger than {a}?"),
    ("How do I migrate from {a} to {b}?", "How do I migrate from {b} to {a}?"),
    ("How far is it from {a} to {b}?", "How far is it from {b} to {a}?"),
    ("Why is {a} better than {b}?", "Why is {b} better than {a}?"),
]
ROLE_FILL = [("Brazil", "Germany"), ("km", "miles"), ("French", "English"), ("Celsius", "Fahrenheit"),
             ("MySQL", "Postgres"), ("Spain", "Italy"), ("Boston", "New York"), ("Vue", "React")]
ROLE_HAND = [
    ("Can a landlord evict a tenant without notice?", "Can a tenant evict a landlord without notice?"),
    ("What does the tenant owe the landlord at move-out?", "What does the landlord owe the tenant at move-out?"),
    ("Can the employer sue the employee for breach of contract?",
     "Can the employee sue the employer for breach of contract?"),
    ("Should the buyer pay the seller's closing costs?", "Should the seller pay the buyer's closing costs?"),
    ("How does the client authenticate the server in TLS?", "How does the server authenticate the client in TLS?"),
    ("Copy the files from the server to my laptop.", "Copy the files from my laptop to the server."),
    ("How do I move money from savings into checking?", "How do I move money from checking into savings?"),
    ("Does the parent process wait for the child process?", "Does the child process wait for the parent process?"),
    ("Why does the dog chase the cat?", "Why does the cat chase the dog?"),
    ("Should I send data from the sensor to the hub?", "Should I send data from the hub to the sensor?"),
    ("How do I forward port 80 to port 8080?", "How do I forward port 8080 to port 80?"),
    ("Write an email from a manager to an intern about deadlines.",
     "Write an email from an intern to a manager about deadlines."),
    ("Explain how the teacher should give feedback to the student.",
     "Explain how the student should give feedback to the teacher."),
    ("Does the primary replicate to the replica or the other way round?",
     "Does the replica replicate to the primary or the other way round?"),
    ("Join the orders table to the customers table.", "Join the customers table to the orders table."),
    ("Sort users by age, then by name.", "Sort users by name, then by age."),
    ("Copy data into the staging bucket out of the production bucket.",
     "Copy data out of the staging bucket into the production bucket."),
]

# --- scope changes --------------------------------------------------------------------------------------------------
SCOPE_HAND = [
    ("How do I create a git branch?", "How do I rename a git branch?"),
    ("What is the capital of France?", "What is the currency of France?"),
    ("How do I read a file in Python?", "How do I write a file in Python?"),
    ("What are the benefits of running?", "What are the risks of running?"),
    ("How do I bake bread at home?", "How do I store bread at home?"),
    ("Explain how vaccines work.", "Explain how antibiotics work."),
    ("How do I delete a user in Postgres?", "How do I delete all users in Postgres?"),
    ("What were the sales figures for last week?", "What were the sales figures for last year?"),
    ("List the tallest buildings in Europe.", "List the tallest buildings in the world."),
    ("How do I reset my password?", "How do I reset another user's password?"),
    ("Summarize the first chapter of Dune.", "Summarize the whole of Dune."),
    ("How do I clear the cache in Chrome for one site?", "How do I clear the cache in Chrome for all sites?"),
    ("What is the average salary of a nurse in Texas?", "What is the average salary of a nurse in the US?"),
    ("How do I back up my photos?", "How do I back up my photos and contacts?"),
    ("What is the syntax of a for loop in Python?", "What is the syntax of a while loop in Python?"),
    ("Translate this paragraph into Spanish.", "Translate this paragraph into Spanish and explain the grammar."),
    ("How do I cook rice?", "How do I cook brown rice?"),
    ("What does the CEO of a startup do?", "What does the CFO of a startup do?"),
    ("Give me a vegetarian lasagna recipe.", "Give me a vegan lasagna recipe."),
    ("How do I update a single row in SQL?", "How do I update every row in SQL?"),
    ("What is the speed limit on highways in Germany?", "What is the speed limit in cities in Germany?"),
    ("How do I get a refund for a cancelled flight?", "How do I get a refund for a delayed flight?"),
    ("How do I train a puppy to sit?", "How do I train an adult dog to sit?"),
    ("Explain the causes of World War I.", "Explain the consequences of World War I."),
    ("How do I remove a file from git?", "How do I remove a file from git history?"),
    ("What is the dosage of ibuprofen for adults?", "What is the dosage of ibuprofen for children?"),
    ("How do I unit test a React component?", "How do I end-to-end test a React app?"),
    ("What are the side effects of aspirin?", "What are the uses of aspirin?"),
    ("How do I list running containers in Docker?", "How do I list all containers in Docker?"),
    ("What is the monthly cost of the basic plan?", "What is the yearly cost of the basic plan?"),
]
SCOPE_FRAMES = [("How do I {v} in {t}?", "How do I {v2} in {t}?")]
SCOPE_VERBS = [("read a file", "write a file"), ("create a list", "sort a list"), ("open a socket", "close a socket"),
               ("define a class", "define an interface"), ("import a module", "reload a module"),
               ("parse a date", "format a date")]

# --- long RAG prompts ------------------------------------------------------------------------------------------------
DOC_TOPICS = [
    ("Northwind Cloud", "refund policy", ["refund", "invoice", "subscription", "credit", "billing cycle"]),
    ("Harbor Bank", "savings account terms", ["interest", "withdrawal", "deposit", "fee", "statement"]),
    ("Atlas Logistics", "shipping guide", ["parcel", "customs", "delivery", "warehouse", "tracking"]),
    ("Meridian Health", "patient handbook", ["appointment", "prescription", "referral", "insurance", "clinic"]),
    ("Orbit Robotics", "safety manual", ["sensor", "battery", "firmware", "calibration", "emergency stop"]),
    ("Cedar Housing", "tenancy agreement", ["rent", "deposit", "repairs", "notice", "inspection"]),
    ("Lumen Energy", "tariff sheet", ["kilowatt-hour", "meter", "peak rate", "standing charge", "solar export"]),
    ("Pinecrest University", "exam regulations", ["exam", "resit", "grade", "appeal", "transcript"]),
]
SENT_TEMPLATES = [
    "{org} reviews every {w} request within {n} business days of receipt.",
    "Customers must contact {org} support before the {w} deadline, which is {n} days after the event.",
    "The {w} rules in this {t} apply to all accounts opened after {y}.",
    "If the {w} is disputed, the case is escalated to a senior officer at {org}.",
    "A {w} of more than {k} dollars requires written approval from a manager.",
    "{org} may change this {t} with {n} weeks of notice published on its website.",
    "Records about each {w} are kept for {n} years and then deleted.",
    "Exceptions to the {w} process are granted only in writing.",
    "The {w} team at {org} works from {n} a.m. to {m} p.m. on weekdays.",
    "Any {w} made through a partner is handled under the partner's own terms, not this {t}.",
    "For questions about the {w}, see section {n} of the {t}.",
    "The {t} was last revised in {y} and replaces all earlier versions.",
    "Late {w} notices carry a charge of {k} dollars per month.",
    "Each {w} is confirmed by email within {n} hours.",
]
LONG_QUESTIONS = [  # (question, paraphrase, negation, number change, scope change, role swap or None)
    ("How many business days does {org} take to review a refund request?",
     "Within how many business days does {org} review a refund request?",
     "Which refund requests does {org} not review within the stated days?",
     "Does {org} review a refund request within 3 business days?",
     "How many business days does {org} take to review every type of request?",
     None),
    ("What approval is needed for a credit above the stated amount?",
     "For a credit above the stated amount, what approval is required?",
     "What approval is not needed for a credit above the stated amount?",
     "What approval is needed for a credit above 500 dollars?",
     "What approval is needed for a credit of any amount?",
     None),
    ("Can the customer escalate a disputed fee to {org}?",
     "Is the customer able to escalate a disputed fee to {org}?",
     "Can't the customer escalate a disputed fee to {org}?",
     "Can the customer escalate 2 disputed fees to {org}?",
     "Can the customer escalate any complaint to {org}?",
     "Can {org} escalate a disputed fee to the customer?"),
    ("How long are records kept before they are deleted?",
     "Before deletion, how long are records kept?",
     "Which records are never deleted?",
     "Are records kept for 10 years before they are deleted?",
     "How long are records and backups kept before they are deleted?",
     None),
    ("When does the team at {org} start work on weekdays?",
     "On weekdays, what time does the team at {org} start work?",
     "When does the team at {org} not work on weekdays?",
     "Does the team at {org} start work at 7 a.m. on weekdays?",
     "When does the team at {org} start work on weekends?",
     None),
    ("Does the partner's policy override the terms of {org}?",
     "Do the terms of a partner override those of {org}?",
     "Does the partner's policy not override the terms of {org}?",
     "Does the partner's policy override the terms of {org} after 30 days?",
     "Does the partner's policy override every agreement of {org}?",
     "Do the terms of {org} override the partner's policy?"),
    ("Summarize the rules about late notices in the documents above.",
     "Give a summary of the rules on late notices in the documents above.",
     "Summarize the rules that do not concern late notices in the documents above.",
     "Summarize the rules about late notices issued in 2019 in the documents above.",
     "Summarize all of the rules in the documents above.",
     None),
    ("Based on the documents, should the customer contact support before or after the deadline?",
     "According to the documents, should the customer reach support before or after the deadline?",
     "Based on the documents, when should the customer not contact support?",
     "Based on the documents, should the customer contact support 5 days after the deadline?",
     "Based on the documents, should every user contact support before or after the deadline?",
     None),
]


def _doc(rng: random.Random, org: str, topic: str, words: list[str], n_words: int) -> str:
    out: list[str] = []
    count = 0
    while count < n_words:
        s = rng.choice(SENT_TEMPLATES).format(org=org, t=topic, w=rng.choice(words), n=rng.randint(2, 30),
                                              m=rng.randint(4, 8), k=rng.choice([50, 100, 250, 1000]),
                                              y=rng.randint(2015, 2025))
        out.append(s)
        count += len(s.split())
    return " ".join(out)


def _context(rng: random.Random, topic_i: int, n_words: int) -> str:
    org, topic, words = DOC_TOPICS[topic_i]
    docs = []
    per = max(120, n_words // 3)
    for d in range(3):
        docs.append(f"Document {d + 1}: {org} {topic}, part {d + 1}.\n{_doc(rng, org, topic, words, per)}")
    return "Use only the documents below to answer the question.\n\n" + "\n\n".join(docs)


def _long_pairs(rng: random.Random) -> list[dict]:
    out: list[dict] = []
    for ti in range(len(DOC_TOPICS)):
        for qi, (q, para, neg, num, scope, role) in enumerate(LONG_QUESTIONS):
            org = DOC_TOPICS[ti][0]
            n_words = rng.choice([300, 450, 700, 1000, 1400, 1900])
            ctx = _context(random.Random(ti * 100 + qi), ti, n_words)
            a = f"{ctx}\n\nQuestion: {q.format(org=org)}"
            fmt = lambda s: f"{ctx}\n\nQuestion: {s.format(org=org)}"  # noqa: E731
            variant = (ti + qi) % 4
            if variant == 0:  # whitespace and quote differences in the documents, same question
                b = ctx.replace(". ", ".  ").replace("'", "’") + f"\n\nQuestion: {q.format(org=org)}"
                out.append(dict(a=a, b=b, same=True, category="long_near_duplicate"))
            out.append(dict(a=a, b=fmt(para), same=True, category="long_near_duplicate"))
            other = LONG_QUESTIONS[(qi + 3) % len(LONG_QUESTIONS)][0]
            out.append(dict(a=a, b=fmt(other), same=False, category="long_near_duplicate"))
            if variant in (1, 3):  # same question, one fact in the documents changed
                changed = ctx.replace(" days", " weeks", 1) if " days" in ctx else ctx + " Fees apply."
                out.append(dict(a=a, b=f"{changed}\n\nQuestion: {q.format(org=org)}", same=False,
                                category="long_near_duplicate"))
            out.append(dict(a=a, b=fmt(neg), same=False, category="negation"))
            if variant in (0, 2):
                out.append(dict(a=a, b=fmt(num), same=False, category="number_change"))
            if variant in (1, 2):
                out.append(dict(a=a, b=fmt(scope), same=False, category="scope_change"))
            if role:
                out.append(dict(a=a, b=fmt(role), same=False, category="role_swap"))
            if variant == 3:  # same question over another company's documents
                tj = (ti + 1) % len(DOC_TOPICS)
                ctx2 = _context(random.Random(ti * 100 + qi), tj, n_words)
                out.append(dict(a=a, b=f"{ctx2}\n\nQuestion: {q.format(org=org)}", same=False,
                                category="long_near_duplicate"))
    return out


def _surface(rng: random.Random, s: str) -> str:
    """A surface variant a user might type: casing, curly apostrophes, trailing punctuation, filler words."""
    k = rng.randrange(6)
    if k == 0:
        return s.lower()
    if k == 1:
        return s.replace("'", "’")
    if k == 2:
        return s.rstrip("?.!") if s[-1] in "?.!" else s + "?"
    if k == 3:
        return "Please, " + s[0].lower() + s[1:]
    if k == 4:
        return "Quick question: " + s
    return s + " Thanks!"


def build() -> list[dict]:
    rng = random.Random(13)
    out: list[dict] = []
    for g in PARA_GROUPS:
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                out.append(dict(a=g[i], b=g[j], same=True, category="paraphrase"))
        out.append(dict(a=g[0], b=_surface(rng, g[0]), same=True, category="paraphrase"))
    for (fa, fb), (v, t) in zip(PARA_FRAMES * 3, PARA_FILL + PARA_FILL[::-1] + PARA_FILL[3:]):
        out.append(dict(a=fa.format(v=v, t=t), b=fb.format(v=v, t=t), same=True, category="paraphrase"))
    for t, u in ALIAS_PAIRS:
        for v in ALIAS_VERBS[t]:
            fa, fb = ALIAS_FRAMES[len(out) % 2]
            out.append(dict(a=fa.format(v=v, t=t), b=fb.format(v=v, u=u), same=True, category="paraphrase"))
    for u1, u2, u2b in UNIT_FILL:
        n = rng.randint(2, 12)
        out.append(dict(a=UNIT_PARA[0][0].format(u1=u1, n=n, u2=u2), b=UNIT_PARA[0][1].format(u1=u1, n=n, u2b=u2b),
                        same=True, category="paraphrase"))
    for fa, fb in NEG_FRAMES:
        for x in rng.sample(NEG_FILL, 4):
            out.append(dict(a=fa.format(x=x), b=fb.format(x=x), same=False, category="negation"))
    for a, b in NEG_HAND:
        out.append(dict(a=a, b=b, same=False, category="negation"))
    for fa, fb in NUM_FRAMES:
        for _ in range(5):
            n, m = rng.sample(range(2, 99), 2)
            y, z = rng.sample(range(1990, 2026), 2)
            major = rng.randint(1, 9)
            v1, v2 = f"{major}.{rng.randint(0, 9)}", f"{major}.{rng.randint(10, 20)}"
            w1, w2 = rng.sample(WORDS_NUM, 2)
            p1, p2 = rng.sample([3000, 5000, 8000, 8080, 8443, 9090], 2)
            kw = dict(n=n, m=m, y=y, z=z, v1=v1, v2=v2, w1=w1, w2=w2, p1=p1, p2=p2, k=rng.choice([80, 250, 1200]),
                      u=rng.choice(["miles", "pounds", "gallons", "feet"]), x=rng.choice(NUM_X), c=rng.choice(CITIES))
            out.append(dict(a=fa.format(**kw), b=fb.format(**kw), same=False, category="number_change"))
    for fa, fb in ENT_FRAMES:
        for k in range(5):
            (a, b), (c, d), (o, q), (f, g) = (LANG_PAIRS[k], PLACE_PAIRS[k], ORG_PAIRS[k], FOOD_PAIRS[k])
            if k % 2:
                a, b, c, d, o, q, f, g = b, a, d, c, q, o, g, f
            kw = dict(a=a, b=b, c=c, d=d, o=o, q=q, f=f, g=g)
            out.append(dict(a=fa.format(**kw), b=fb.format(**kw), same=False, category="entity_swap"))
    for fa, fb in ROLE_FRAMES:
        for a, b in rng.sample(ROLE_FILL, 5):
            out.append(dict(a=fa.format(a=a, b=b), b=fb.format(a=a, b=b), same=False, category="role_swap"))
    for a, b in ROLE_HAND:
        out.append(dict(a=a, b=b, same=False, category="role_swap"))
    for a, b in SCOPE_HAND:
        out.append(dict(a=a, b=b, same=False, category="scope_change"))
    for (v, v2), t in zip(SCOPE_VERBS * 2, ["Python", "Go", "Rust", "Java", "JavaScript", "C#", "Ruby", "Kotlin",
                                            "Swift", "PHP", "Scala", "Elixir"]):
        out.append(dict(a=f"How do I {v} in {t}?", b=f"How do I {v2} in {t}?", same=False, category="scope_change"))
    firsts = [g[0] for g in PARA_GROUPS] + [f"How do I {v} in {t}?" for v, t in PARA_FILL]
    for i in range(60):
        a, b = rng.sample(firsts, 2)
        out.append(dict(a=a, b=b, same=False, category="unrelated"))
    out += _long_pairs(rng)
    for p in out:
        h = int(hashlib.sha256((p["a"] + "\x00" + p["b"]).encode()).hexdigest(), 16)
        p["split"] = "check" if h % 3 == 0 else "tune"
    return out


def main() -> None:
    pairs = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    cats: dict[str, list[int]] = {}
    for p in pairs:
        c = cats.setdefault(p["category"], [0, 0])
        c[0 if p["same"] else 1] += 1
    print(f"{len(pairs)} pairs -> {OUT}")
    for k, (pos, neg) in sorted(cats.items()):
        print(f"  {k:22s} same {pos:4d}  different {neg:4d}")


if __name__ == "__main__":
    main()
