"""HELD-APART phrasing templates, fifth round (issue 30, second round): written AFTER the intent path was built
and tuned (on the written sets, generated-tuning, generated-heldout and generated-heldout2, and on two wrong
answers of tuning.yaml), because that tuning came after heldout4's first run; never tuned against. No template
text here may appear in the other template files."""

from __future__ import annotations

from tests.data.precision.templates_heldout import Template

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "chatty", "Hey, need a hand: {net} - broadcast?"),
    ("subnet_calc", "net", "usable", "terse", "usable IPs {net}"),
    ("subnet_calc", "net", "mask", "chatty", "which netmask would {net} use on a router config?"),
    ("subnet_calc", "prefix", "usable", "chatty", "A /{p} gives me how many usable hosts?"),
    ("subnet_calc", "mask", "prefix", "terse", "slash notation for mask {mask}"),
    ("subnet_calc", "contains", "contains", "chatty", "Does {net} contain the address {ip}?"),
    ("subnet_calc", "net", "network", "other-language", "Netzadresse zu {hostnet} bitte"),
    # --- bases ---
    ("number_base", "base", "to_oct", "chatty", "How would {n} be written in octal?"),
    ("number_base", "base", "from_hex", "chatty", "Decode hex {hex} to a normal decimal number for me"),
    ("number_base", "base", "to_bin", "terse", "bin({n})"),
    ("number_base", "base", "small_hex", "words", "{small_words} as hex?"),
    ("number_base", "base", "to_bin", "other-language", "{n} im Binärsystem, bitte"),
    # --- primes ---
    ("prime_factorize", "composite", "smallest", "chatty", "What is the smallest prime that goes into {n}?"),
    ("prime_factorize", "composite", "largest", "terse", "{n}: largest prime factor"),
    ("prime_factorize", "composite", "largest", "other-language", "Größter Primfaktor der Zahl {n}?"),
    # --- money ---
    ("decimal_finance", "compound", "total", "chatty",
     "Say I park ${p} in an account paying {r}% compounded {freq} - what's the balance after {y} years?"),
    ("decimal_finance", "simple", "interest", "chatty", "What simple interest does ${p} earn at {r}% over {y} years?"),
    ("decimal_finance", "loan", "payment", "chatty",
     "Mortgage question: ${p} borrowed at {r}% for {y} years, what's the monthly payment?"),
    ("decimal_finance", "tip", "tip", "chatty",
     "the bill is ${bill} and I want to leave {pct}% - how much is the tip?"),
    ("decimal_finance", "compound", "total", "other-language",
     "{p_plain} Euro zu {r}% Zinseszins, {freq_de} verzinst, über {y} Jahre: Endbetrag?"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "chatty", "Can you tell me the number of days from {a_dmy} to {b_dmy}?"),
    ("date_diff", "two_dates", "days", "terse", "days {a_short} - {b_short}"),
    ("day_of_week", "one_date", "weekday", "terse", "{iso} = which weekday"),
    ("day_of_week", "one_date", "weekday", "chatty", "Was {mdy} a weekday or a weekend - which day exactly?"),
    ("date_add", "one_date", "plus_n", "chatty", "Starting {mdy}, where do I land {n} days later?"),
    ("date_add", "one_date", "minus_n", "terse", "{n} days earlier than {iso}"),
    ("date_add", "one_date", "plus_w", "chatty", "What's the date {w} weeks after {dmy}?"),
    ("day_of_week", "one_date", "weekday", "other-language", "Welcher Wochentag ist der {de}?"),
    # --- units ---
    ("unit_convert", "units", "result", "chatty", "Can you turn {v} {f_long} into {t_long}?"),
    ("unit_convert", "units", "result", "terse", "{v} {f_long} => {t_long}"),
    ("unit_convert", "units", "small_result", "words", "{small_words} {f_long} converted to {t_long}"),
    ("unit_convert", "temperature", "f_to_c", "chatty", "The oven says {f} degrees Fahrenheit; in Celsius that is?"),
    ("unit_convert", "units", "result", "other-language", "{v_de} {f_de} sind wie viel {t_de}?"),
    # --- statistics ---
    ("statistics_calc", "numbers", "mean", "chatty", "Here are my numbers: {list}. What's the average?"),
    ("statistics_calc", "numbers", "median", "terse", "{list} -> median"),
    ("statistics_calc", "numbers", "stdev", "chatty", "Could you get the standard deviation of {list_and}?"),
    ("statistics_calc", "numbers", "median", "other-language", "Median der Werte {list_de}"),
    # --- distractors ---
    (None, "net", "", "chatty", "Our intern configured {net}; was that a mistake?"),
    (None, "base", "", "chatty", "Why does {n} appear so often in old software?"),
    (None, "compound", "", "chatty", "My uncle says {r}% on ${p} is a scam - is he right?"),
    (None, "one_date", "", "chatty", "Which films came out on {dmy}?"),
    (None, "units", "", "terse", "is {v} {f_long} normal for a delivery van"),
    (None, "numbers", "", "chatty", "Are {list} good numbers for a PIN?"),
]
