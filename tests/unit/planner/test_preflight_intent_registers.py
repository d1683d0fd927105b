"""Issue 30, round 3: the intent path reads more registers without guessing. Arrows as the terse "to", a duration's
own preposition ("worth after 6 years"), a base named as the result ("1111 in binary when expressed in hex"),
"one" as a pronoun, a number before a colon, a list ended by a full stop, "how would N be written", "per
second" (no ordinal), one-letter unit symbols, capitalised unit names, pounds that are a weight, "or" between
words (not values), a subnet's "in total". Each reading has its refusal beside it: the precision rule stays.
Values are checked against independent computations (ipaddress, format, Fraction, trial division)."""

from __future__ import annotations

import ipaddress
from fractions import Fraction
from typing import Any

import pytest

from mcp_service.tools import IMPLEMENTATIONS
from moe_core.contracts.tools import select_tools
from planner.preflight import recognise
from planner.tool_catalogue import ToolCatalogue

pytestmark = pytest.mark.unit
ALL = ToolCatalogue(select_tools())


def answer(question: str, tool: str) -> dict[str, Any]:
    task = recognise(question, ALL)
    assert task is not None, f"not claimed: {question!r}"
    assert task.tool == tool and task.args is not None, task
    return IMPLEMENTATIONS[tool](task.args).result


def handed_over(question: str) -> bool:
    return recognise(question, ALL) is None


def largest_factor(n: int) -> int:
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n) if n > 1 else largest


@pytest.mark.parametrize(("question", "digits", "base"), [
    ("4095 -> hex", format(4095, "X"), 16), ("777 => octal", format(777, "o"), 8),
    ("0xff \u2192 decimal", "255", 10)])
def test_an_arrow_is_the_terse_registers_to(question: str, digits: str, base: int) -> None:
    assert answer(question, "number_base")["in_bases"][str(base)].upper() == digits


@pytest.mark.parametrize("question", ["10.4.8.0/21 => broadcast", "172.16.5.0/24 -> broadcast address?",
                                      "10.4.8.0/21 -> highest usable host"])
def test_an_arrow_to_a_subnet_fact(question: str) -> None:
    net = ipaddress.ip_network(question.split()[0])
    result = answer(question, "subnet_calc")
    assert (result["broadcast"], result["last_host"]) == (str(net.broadcast_address), str(net[-2]))


@pytest.mark.parametrize(("question", "expected"), [
    ("12.5 km -> miles", Fraction(125, 10) * 1000 / Fraction(1609344, 1000)),
    ("168 lb -> g", 168 * Fraction(45359237, 10**5)),
    ("3 h to s", Fraction(10800)),
    ("Wie viel sind 67,1 Meter in Yards?", Fraction(671, 10) / Fraction(9144, 10000)),
])
def test_unit_symbols_arrows_and_capitalised_names(question: str, expected: Fraction) -> None:
    assert Fraction(answer(question, "unit_convert")["fraction"]) == expected


@pytest.mark.parametrize("question", ["5 g of sugar in calories", "3 x to s", "5 k to m",
                                      "Wie viel sind 292 Gramm in Pfund?"])  # Pfund: 500 g or a pound?
def test_no_guess_about_a_unit(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize("question", ["How much will $4,000 be worth after 7 years at 3% compounded monthly?",
                                      "$4,000 at 3% compounded monthly: worth after 7 years?",
                                      "put $4,000 at 3% compounded monthly, what is it worth after 7 years"])
def test_worth_after_a_duration_is_a_value(question: str) -> None:
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        total = Decimal(4000) * (1 + Decimal("0.03") / 12) ** 84
    assert answer(question, "decimal_finance")["result"] == str(total.quantize(Decimal("0.01")))


@pytest.mark.parametrize("question", ["Is it worth it to invest $1000 at 5% compounded yearly for 3 years?",
                                      "Would $1000 at 5% compounded annually for 3 years be worth it?",
                                      "$1000 at 5% compounded annually for 3 years, worth it?",
                                      "Is $1000 at 5% compounded yearly worth after 3 years and then 2 more?"])
def test_worth_it_is_a_judgement(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize(("question", "digits", "base"), [
    ("what is 1111 in binary when expressed in hex?", "F", 16),
    ("11011 in binary, when written in decimal, is what", "27", 10),
    ("what is 1010 in decimal when written in binary?", format(1010, "b"), 2)])
def test_a_base_named_as_the_result(question: str, digits: str, base: int) -> None:
    assert answer(question, "number_base")["in_bases"][str(base)].upper() == digits


@pytest.mark.parametrize("question", ["How would 10 be written in hex, and in binary?",
                                      "what is 1012 in binary when written in decimal?",  # no binary numeral
                                      "in binary, what is 1010 when written in decimal?"])  # whose base word?
def test_a_base_named_as_the_result_refuses_what_it_cannot_bind(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize("question", ["How would 2748 be written in hex?", "how is 2748 expressed in hex",
                                      "How does 2748 look in hex?"])
def test_how_would_n_be_written_asks_for_a_value(question: str) -> None:
    assert answer(question, "number_base")["in_bases"]["16"].upper() == "ABC"


@pytest.mark.parametrize("question", ["How would you explain hex to a child?", "How is a subnet mask written?"])
def test_how_questions_about_a_topic_still_go_to_the_planner(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize("question", ["Quick one: 20 km expressed in metres?", "which one: 20 km in metres?",
                                      "So for 20 km, which one is it in metres"])
def test_one_as_a_pronoun_binds_no_value(question: str) -> None:
    assert Fraction(answer(question, "unit_convert")["fraction"]) == 20000


def test_one_as_a_number_still_counts() -> None:
    assert Fraction(answer("one km in metres", "unit_convert")["fraction"]) == 1000
    assert handed_over("total hosts across two /24 blocks")  # a number word no subnet value binds


@pytest.mark.parametrize("question", ["600851475143: largest prime factor", "13195: biggest prime factor?"])
def test_a_number_before_a_colon_is_no_time(question: str) -> None:
    n = int(question.split(":")[0])
    assert max(int(f) for f in answer(question, "prime_factorize")["flat"]) == largest_factor(n)


@pytest.mark.parametrize("question", ["Scores: 4, 8, 15, 16. Mean?", "I logged 4, 8, 15 and 16. What's the mean?"])
def test_a_list_ended_by_a_full_stop(question: str) -> None:
    assert Fraction(answer(question, "statistics_calc")["mean"]) == Fraction(43, 4)


@pytest.mark.parametrize("question", ["Values 4, 8, 15. Then double the mean.",
                                      "I have 4, 8, 15. My friend has 16, 23. Average?",
                                      "My numbers are 4, 8, 15. What's the average of the first two?"])
def test_sentences_after_a_list_that_change_it_hand_over(question: str) -> None:
    assert handed_over(question)


@pytest.mark.parametrize("question", ["Can you turn 25 metres per second into km/h?",
                                      "twenty-five metres per second converted to km/h"])
def test_per_second_is_a_unit_not_an_ordinal(question: str) -> None:
    assert Fraction(answer(question, "unit_convert")["fraction"]) == 90


def test_pounds_converted_to_a_mass_are_a_weight_and_to_a_currency_go_to_the_planner() -> None:
    assert Fraction(answer("10 pounds => kilograms", "unit_convert")["fraction"]) == Fraction(45359237, 10**7)
    assert handed_over("10 pounds => dollars")
    assert handed_over("how many pounds do I get for 5 dollars")


def test_or_between_two_facts_the_tool_reports_is_answered() -> None:
    assert answer("Was 2024-01-06 a weekday or a weekend?", "day_of_week")["weekday"] == "Saturday"
    assert answer("2024-01-06: weekday or weekend?", "day_of_week")["weekend"] is True


@pytest.mark.parametrize("question", [
    "5 km or 10 km in miles?", "What's the date 3 days after 2024-01-01 or 2024-02-01?",
    "convert 5 km to miles or feet", "What's the hex or octal form of 255?", "Is 2024-12-25 a Monday or a holiday?",
    "days between 2024-01-01 and 2024-03-01, or weeks?", "Is 10.0.0.5 inside 10.0.0.0/24 or outside?"])
def test_or_between_values_or_with_something_else_hands_over(question: str) -> None:
    assert handed_over(question)


def test_a_yes_no_question_is_answered_only_for_a_fact_the_tool_reports() -> None:
    assert answer("is 10.0.0.5 in 10.0.0.0/24", "subnet_calc")["contains"]["inside"] is True
    assert answer("Was 2024-01-06 a weekday?", "day_of_week")["weekday"] == "Saturday"
    for question in ("Is a 15% tip on $80 generous?", "Is a 15% tip on $80 fair?", "Is 255 in hex FF?",
                     "Is 10.0.0.0/24's broadcast 10.0.0.255?", "Would 12 km -> miles be far?"):
        assert handed_over(question), question


@pytest.mark.parametrize("question", ["5 km => m => cm", "5 km to miles to feet",
                                      "2024-03-05: weekday or weekend, and is it a holiday?",
                                      "10.0.0.0/24 broadcast, and what about 10.0.1.0/24?"])
def test_two_targets_or_a_second_question_hand_over(question: str) -> None:
    assert handed_over(question)


def test_a_subnets_total_is_its_addresses() -> None:
    assert answer("how many addresses does a /22 have in total?", "subnet_calc")["addresses"] == "1024"
    assert handed_over("I need the total: 10.0.0.0/24 and 10.0.1.0/24 addresses")
