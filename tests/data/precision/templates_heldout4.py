"""HELD-APART phrasing templates, fourth round (issue 30, second round): written BEFORE the intent path
(planner/preflight/intent.py: which tool from signals, which arguments from the typed readers) was built or
tuned, and committed before its first run. Never tuned against: a template here is never edited to pass, and
a miss here is never fixed one by one (a tuning round after its first run needs a fresh heldout5). No
template text here may appear in the other template files."""

from __future__ import annotations

from tests.data.precision.templates_heldout import Template

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "chatty", "For the subnet {net}, which address is used for broadcast?"),
    ("subnet_calc", "net", "network", "terse", "network id for {hostnet}"),
    ("subnet_calc", "net", "usable", "chatty", "How many devices could I fit on {net}?"),
    ("subnet_calc", "net", "last", "terse", "{net} -> highest usable host?"),
    ("subnet_calc", "prefix", "wildcard", "terse", "ACL wildcard, /{p}"),
    ("subnet_calc", "prefix", "addresses", "chatty", "roughly how many addresses are in a /{p} block in total?"),
    ("subnet_calc", "mask", "prefix", "chatty", "I was handed the mask {mask}, what's that in CIDR notation?"),
    ("subnet_calc", "contains", "contains", "terse", "is {ip} part of {net}"),
    ("subnet_calc", "net", "broadcast", "other-language", "Welche Broadcast-Adresse hat das Netz {net}?"),
    # --- bases ---
    ("number_base", "base", "to_bin", "chatty", "Could you show me {n} written out in binary?"),
    ("number_base", "base", "from_hex", "terse", "0x{hex} to dec"),
    ("number_base", "base", "to_hex", "terse", "hex of {n}"),
    ("number_base", "base", "from_bin", "chatty", "what number is {bin} in binary when written in decimal?"),
    ("number_base", "base", "small_bin", "words", "{small_words} in binary, please"),
    ("number_base", "base", "to_hex", "other-language", "Was ist {n} als Hexzahl?"),
    # --- primes ---
    ("prime_factorize", "composite", "largest", "chatty", "What's the biggest prime that divides {n}?"),
    ("prime_factorize", "composite", "smallest", "terse", "smallest prime divisor of {n}"),
    ("prime_factorize", "composite", "largest", "other-language", "Was ist der größte Primteiler von {n}?"),
    # --- money ---
    ("decimal_finance", "compound", "total", "terse", "${p} at {r}% compounded {freq} for {y} years"),
    ("decimal_finance", "compound", "interest", "chatty",
     "How much interest would ${p} earn in {y} years at {r}% compounded {freq}?"),
    ("decimal_finance", "simple", "total", "chatty",
     "If I lend ${p} at {r}% simple interest for {y} years, what do I get back in total?"),
    ("decimal_finance", "loan", "payment", "terse", "monthly payment on a ${p} loan, {r}% APR, {y} years"),
    ("decimal_finance", "tip", "tip", "chatty", "Our dinner came to ${bill}; what's a {pct}% tip?"),
    ("decimal_finance", "loan", "payment", "other-language",
     "Wie hoch ist die Monatsrate für einen Kredit über {p_plain} Euro bei {r}% Zinsen und {y} Jahren Laufzeit?"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "chatty", "How many days passed from {a_mdy} until {b_mdy}?"),
    ("date_diff", "two_dates", "days", "terse", "{a_iso} to {b_iso} in days"),
    ("day_of_week", "one_date", "weekday", "chatty", "Do you know what weekday {dmy} fell on?"),
    ("day_of_week", "one_date", "weekday", "other-language", "An welchem Wochentag war der {de}?"),
    ("date_add", "one_date", "plus_n", "terse", "date: {iso} plus {n} days"),
    ("date_add", "one_date", "minus_n", "chatty", "What date was it {n} days before {mdy}?"),
    ("date_add", "one_date", "plus_small", "words", "{small_words} days after {iso}"),
    ("date_diff", "two_dates", "days", "other-language", "Anzahl der Tage zwischen {a_iso} und {b_iso}"),
    # --- units ---
    ("unit_convert", "units", "result", "terse", "{v} {f} equals how many {t}"),
    ("unit_convert", "units", "result", "chatty", "How many {t_long} are there in {v} {f_long}?"),
    ("unit_convert", "units", "result", "chatty", "Quick one: {v} {f_long} expressed in {t_long}?"),
    ("unit_convert", "temperature", "c_to_f", "chatty", "It's {c} degrees Celsius here, what's that in Fahrenheit?"),
    ("unit_convert", "units", "result", "other-language", "Ich brauche {v_de} {f_de} umgerechnet in {t_de}"),
    # --- statistics ---
    ("statistics_calc", "numbers", "median", "chatty", "Can you find the median of these values: {list}?"),
    ("statistics_calc", "numbers", "mean", "terse", "mean of {list_and}"),
    ("statistics_calc", "numbers", "pstdev", "terse", "population std dev: {list}"),
    ("statistics_calc", "numbers", "mean", "other-language", "Durchschnitt von {list_de}?"),
    # --- distractors ---
    (None, "net", "", "chatty", "My ISP assigned me {net}, should I put a firewall in front of it?"),
    (None, "prefix", "", "terse", "why do people still use a /{p}"),
    (None, "base", "", "chatty", "Is {n} a lucky number in numerology?"),
    (None, "tip", "", "chatty", "Would leaving {pct}% on a ${bill} check offend a waiter in Japan?"),
    (None, "loan", "", "chatty", "Should I take a ${p} loan at {r}% to buy a car or save up for {y} years?"),
    (None, "one_date", "", "terse", "famous people born {mdy}"),
    (None, "units", "", "chatty", "Is {v} {f_long} a lot for a beginner runner?"),
    (None, "two_dates", "", "other-language", "Was geschah in Berlin zwischen {a_de} und {b_de}?"),
]
