"""The guard's rules added for held-out recall at high precision: RAG templates that differ only in formatting reach
the question judgement, and the tiered changed-words policy (same content words, reworded, added words)."""

from __future__ import annotations

import pytest

from serving.gateway import guard
from serving.gateway.cache import SemanticCache
from serving.gateway.config import SemanticCacheConfig
from serving.gateway.embed import Speller

POLICY = guard.Policy(threshold=0.80, threshold_reworded=0.90, max_changed_words=3, threshold_strict=0.93)

RUNBOOK = ("Symptom: the checkout service returns HTTP 502 errors under load within ten minutes of a deploy. "
           "Mitigation: roll back with kubectl rollout undo deployment/checkout -n payments, then confirm the "
           "rollout status. Long-term fix: switch the readiness probe to the HTTP path /healthz/ready and set the "
           "initial delay to 20 seconds.")
LOGS = ("14:02:11Z checkout ERROR upstream connect error before headers.\n14:02:40Z checkout INFO Started in 41.2 "
        "seconds.\nDeploy v2.31.0 started at 14:00:58Z with maxSurge=2 across 6 replicas.")


def _template(style: str, question: str) -> str:
    if style == "banner":
        return (f"Context:\n=== runbook: checkout 5xx spike ===\n\n{RUNBOOK}\n\n\n=== log excerpt ===\n\n{LOGS}\n\n\n"
                f"Based only on the context above: {question}")
    if style == "numbered":
        return (f"Source 1: runbook: checkout 5xx spike\n{RUNBOOK}\n\nSource 2: log excerpt\n{LOGS}\n\n\n"
                f"Q: {question} Thanks")
    if style == "bracketed":
        return (f"Use the following retrieved documents to answer.\n\n[Document 1] runbook: checkout 5xx spike\n"
                f"{RUNBOOK}\n\n[Document 2] log excerpt\n{LOGS}\n\nQuestion: {question}")
    return (f"Hi! Please use the context below.\n\n### runbook: checkout 5xx spike\n{RUNBOOK}\n---\n### log excerpt\n"
            f"{LOGS}\n\n---\n{question}")


@pytest.mark.parametrize("style", ["numbered", "bracketed", "markdown"])
def test_templates_that_differ_only_in_formatting_share_the_context(style):
    base = guard.split(_template("banner", "What command should I run to roll back the deploy?"))
    other = guard.split(_template(style, "what command should i run to roll back the deploy ?"))
    assert base.context and other.context == base.context  # labels, banners, instruction and greeting lines
    assert base.question == "What command should I run to roll back the deploy?"  # grounding instruction dropped
    assert other.question.lower() == base.question.lower()  # label, "Thanks" and the space before "?" dropped
    changed = guard.split(_template(style, "x?").replace("41.2 seconds", "42.1 seconds"))
    assert changed.context != base.context  # a changed document word still gives another context


def test_document_labels_and_bullet_glyphs_are_formatting():
    body = ("the deposit of 500 euros is returned within 14 days of the inspection, and the landlord must list "
            "every deduction in writing with receipts attached for each item that was repaired or replaced.")
    lines = [f"• {body}", f"1. {body}", f"[2] {body}", f"Passage 3: {body}", f"Context: {body}"]
    assert len({guard.context_key(x) for x in lines}) == 1
    assert guard.context_key("Clause 3: " + body) != guard.context_key(body)  # a clause number is content


def test_instruction_lines_are_template_and_content_lines_are_not():
    assert guard.is_template_line("Use the following retrieved documents to answer.")
    assert guard.is_template_line("Hi! Please use the context below.")
    assert not guard.is_template_line("Use the following 3 documents.")  # a number is content
    assert not guard.is_template_line("Refunds are issued within five days.")


@pytest.mark.parametrize("a,b", [
    ("Based only on the context above: Does exclusion 4(c) apply?", "Does exclusion 4(c) apply?"),
    ("Using the documents provided, when does coverage end?", "when does coverage end?"),
    ("Quick q: how do I restart a deployment?", "how do I restart a deployment?"),
    ("draft a short reply to the patient. ?", "draft a short reply to the patient?"),
])
def test_grounding_instructions_and_spacing_are_not_part_of_the_question(a, b):
    assert guard.clean_question(a) == b


@pytest.mark.parametrize("a,b,reason", [
    ("Which expenses are reimbursable under the travel policy?",
     "Which expenses are non-reimbursable under the travel policy?", "negation"),
    ("Is rental covered if the insured rented from an approved vendor?",
     "Is rental covered if the insured rented from a non-approved vendor?", "negation"),
    ("Does drug A increase the levels of drug B?", "Does drug B increase the levels of drug A?", "role swap"),
    ("rsync from server A to server B", "rsync from server B to server A", "role swap"),
    ("Did the lender breach by calling the loan, or the borrower by missing a payment? We represent the lender.",
     "Did the lender breach by calling the loan, or the borrower by missing a payment? We represent the borrower.",
     "role swap"),  # the same terms, one of them in a second role
])
def test_new_traps_are_rejected_with_their_reason(a, b, reason):
    assert guard.rule_problem(a, b) == reason


@pytest.mark.parametrize("a,b", [
    ("Will an employee in Texas get their PTO paid out?", "will an employee in texas get their pto paid out"),
    ("What is overfitting in ML?", "What is overfitting in machine learning?"),
    ("Explain how to scale a deployment in Kubernetes", "pls can you walk me through how to scale a deployment "
                                                         "with k8s?"),
    ("Summarise this email thread.", "Summarize this email thread."),
])
def test_spelling_case_and_filler_do_not_count_as_changed_words(a, b):
    assert guard.rule_problem(a, b) is None
    assert guard.changed_words(a, b) == 0


@pytest.mark.parametrize("a,b", [
    ("Translate 'good morning' into Spanish.", 'How do you say "good morning" in Spanish?'),
    ("Can I claim the deduction as a W-2 employee?", "As a W2 employee, can I claim the deduction?"),
])
def test_quoted_phrases_and_hyphenated_codes_match_their_words(a, b):
    assert guard.rule_problem(a, b) is None


def test_added_words_need_the_strict_bar():
    narrower = ("Side effects of lisinopril", "Side effects of lisinopril in elderly patients")
    assert guard.added_words(*narrower) == {guard._stem("elderly"), guard._stem("patients")}
    assert guard.decide(*narrower, 0.91, POLICY) == (False, "scope (added words)")
    assert guard.decide(*narrower, 0.94, POLICY) == (True, "reworded")
    qualified = ("Summarize our expense policy", "Summarize our expense policy for contractors")
    assert guard.decide(*qualified, 0.91, POLICY) == (False, "scope (added words)")  # one word, in a qualifier
    one_word = ("What is the capital of Australia?", "Australia's capital city is what?")
    assert guard.decide(*one_word, 0.91, POLICY) == (True, "reworded")  # one word, no qualifier: reworded bar
    assert guard.added_words("How fast does light travel?", "How quickly does light move?") == set()


def test_many_changed_words_on_both_sides_pass_only_the_strict_bar():
    pair = ("How much of the rental will the policy reimburse per day?",
            "What's the daily rental reimbursement amount under this policy?")
    assert guard.changed_words(*pair) > POLICY.max_changed_words and not guard.added_words(*pair)
    assert guard.decide(*pair, 0.92, POLICY) == (False, "changed words")
    assert guard.decide(*pair, 0.94, POLICY) == (True, "reworded")
    added = ("How do I cook rice?", "How do I cook rice in a pan on the stove tonight quickly?")
    assert guard.decide(*added, 0.99, POLICY) == (False, "changed words")  # added words never pass on cosine


def test_the_strict_bar_comes_from_the_route_settings():
    assert SemanticCache.policy(SemanticCacheConfig(threshold_strict=0.97)).threshold_strict == 0.97
    assert SemanticCache.policy(SemanticCacheConfig()).threshold_strict == SemanticCacheConfig().threshold_strict


def test_closing_instructions_and_template_tags_are_not_the_question_or_the_context():
    docs = " ".join(["The deposit of 500 euros is returned within 14 days of the final inspection."] * 6)
    plain = guard.split(f"{docs}\n\nWhen is the deposit returned?")
    closing = guard.split(f"{docs}\n\nWhen is the deposit returned?\n\nAnswer only from the context above.")
    trailing = guard.split(f"{docs}\n\nQuestion: When is the deposit returned? Please answer concisely.")
    tagged = guard.split(f"<documents>\n<document index=\"1\">\n{docs}\n</document>\n</documents>\n\n"
                         f"When is the deposit returned?")
    assert plain.question == closing.question == trailing.question == tagged.question
    assert plain.context == closing.context == trailing.context == tagged.context != ""


def test_a_one_letter_typo_of_a_long_word_is_not_a_changed_word():
    assert guard.changed_words("When will I receive the reimbursement?", "When will I recieve the reimbursment?") == 0
    assert guard.changed_words("Side effects of metformin?", "Side effects of metoprolol?") == 2
    assert guard.changed_words("How do I parse a date?", "How do I pause a date?") == 2  # short words: no typo rule


@pytest.mark.parametrize("a,b,reason", [
    ("Give me a cookie recipe with eggs.", "Give me a cookie recipe wihtout eggs.", "negation"),  # a typo'd anchor
    ("What should an interviewer ask a candidate?", "What should a candidate ask an itnerviewer?", "role swap"),
])
def test_typos_do_not_hide_an_anchor_or_a_swapped_role(a, b, reason):
    assert guard.decide(a, b, 0.95, POLICY) == (False, reason)
    assert guard.align_typos(a, "an itnerviewer") == "an interviewer" or reason == "negation"


def test_the_speller_fixes_typos_of_vocabulary_words_only():
    spell = Speller(["password", "summary", "disabled", "symptoms", "macros", "reset"])
    assert spell("How can I reset my passwrod? Give me a smumary of the symtoms.") == \
        "How can I reset my password? Give me a summary of the symptoms."
    assert spell("disable it") == "disable it"  # a last letter more or less is an inflection, not a typo
    assert spell("macOS") == "macOS" and spell("macos") == "macos"  # a name with inner capitals; a known name


def test_a_typo_does_not_move_the_local_embedding(embedder):
    assert float(embedder.embed("How can I reset my passwrod?") @ embedder.embed("How can I reset my password?")) \
        > 0.999
