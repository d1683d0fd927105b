"""HELD-APART phrasing templates (issue 30): written before the preflight was tuned for them and never tuned
against. Never edit these to make the preflight pass; no template text here may appear in templates_tuning.py.
Each template: (tool or None for a distractor, maker in slots.MAKERS, answer key, register, text with {slots})."""

from __future__ import annotations

Template = tuple[str | None, str, str, str, str]

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "terse", "broadcast addr of {net}?"),
    ("subnet_calc", "net", "broadcast", "chatty",
     "I'm setting up a VLAN on {net} - what would its broadcast address be?"),
    ("subnet_calc", "net", "network", "terse", "what network does {hostnet} belong to"),
    ("subnet_calc", "net", "first", "chatty", "could you give me the first usable IP in {net}?"),
    ("subnet_calc", "net", "last", "terse", "last usable address in {net}"),
    ("subnet_calc", "net", "usable", "terse", "number of usable host addresses in {net}"),
    ("subnet_calc", "prefix", "mask", "terse", "netmask for /{p}"),
    ("subnet_calc", "prefix", "usable", "chatty", "how many hosts can I put on a /{p} network?"),
    ("subnet_calc", "mask", "prefix", "terse", "what prefix length is {mask}"),
    ("subnet_calc", "contains", "contains", "chatty", "quick check: is {ip} part of the {net} subnet?"),
    ("subnet_calc", "net", "broadcast", "other-language", "Was ist die Broadcastadresse von {net}?"),
    ("subnet_calc", "prefix", "mask", "other-language", "Welche Subnetzmaske hat ein /{p}?"),
    # --- number bases ---
    ("number_base", "base", "to_hex", "terse", "{n} decimal to hex"),
    ("number_base", "base", "to_bin", "chatty", "What does {n} look like in binary?"),
    ("number_base", "base", "from_hex", "terse", "hex {hex} in decimal"),
    ("number_base", "base", "from_bin", "terse", "binary {bin} to decimal"),
    ("number_base", "base", "small_oct", "words", "{small_words} in octal"),
    ("number_base", "base", "to_hex", "other-language", "{n} in Hexadezimal"),
    # --- prime factors ---
    ("prime_factorize", "composite", "largest", "terse", "largest prime factor of {n}?"),
    ("prime_factorize", "composite", "smallest", "chatty", "What's the smallest prime that goes into {n_comma}?"),
    ("prime_factorize", "composite", "largest", "terse", "prime factorization of {n}"),
    ("prime_factorize", "composite", "largest", "other-language", "Primfaktorzerlegung von {n}"),
    # --- money ---
    ("decimal_finance", "compound", "total", "chatty",
     "If I put ${p} into savings at {r}% compounded {freq} for {y} years, what will I have?"),
    ("decimal_finance", "compound", "total", "terse", "${p} at {r}% compounded {freq}, {y} years"),
    ("decimal_finance", "simple", "interest", "terse", "simple interest on ${p} at {r}% for {y} years?"),
    ("decimal_finance", "loan", "payment", "chatty",
     "What would the monthly payment be on a ${p} loan at {r}% over {y} years?"),
    ("decimal_finance", "tip", "tip", "terse", "{pct}% tip on ${bill}"),
    ("decimal_finance", "tip", "tip", "chatty", "how much is a {pct} percent tip on a ${bill} bill?"),
    ("decimal_finance", "compound", "total", "other-language",
     "{p_plain} Euro zu {r}% Zinseszins, {freq_de} verzinst, {y} Jahre: wie viel habe ich am Ende?"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "terse", "days between {a_iso} and {b_iso}"),
    ("date_diff", "two_dates", "days", "chatty", "How many days are there from {a_mdy} to {b_mdy}?"),
    ("date_diff", "two_dates", "days", "terse", "number of days from {a_dmy} until {b_dmy}"),
    ("date_diff", "two_dates", "days", "other-language", "Wie viele Tage liegen zwischen dem {a_de} und dem {b_de}?"),
    ("day_of_week", "one_date", "weekday", "terse", "weekday of {iso}"),
    ("day_of_week", "one_date", "weekday", "chatty", "What day of the week did {mdy} fall on?"),
    ("day_of_week", "one_date", "weekday", "other-language", "Welcher Wochentag war der {de}?"),
    ("date_add", "one_date", "plus_n", "terse", "{iso} + {n} days"),
    ("date_add", "one_date", "minus_n", "chatty", "what was the date {n} days before {dmy}?"),
    ("date_add", "one_date", "plus_w", "terse", "{w} weeks after {mdy}"),
    ("date_add", "one_date", "plus_small", "words", "{small_words} days after {dmy}"),
    ("date_add", "one_date", "plus_n", "other-language", "Welches Datum ist {n} Tage nach dem {de}?"),
    # --- units ---
    ("unit_convert", "units", "result", "terse", "{v} {f} to {t}"),
    ("unit_convert", "units", "result", "chatty", "How many {t_long} is {v} {f_long}?"),
    ("unit_convert", "units", "result", "terse", "convert {v} {f_long} into {t_long}"),
    ("unit_convert", "units", "small_result", "words", "{small_words} {f_long} in {t_long}"),
    ("unit_convert", "units", "result", "other-language", "Wie viele {t_de} sind {v_de} {f_de}?"),
    ("unit_convert", "temperature", "c_to_f", "terse", "{c} °C in °F"),
    ("unit_convert", "temperature", "f_to_c", "chatty", "what's {f} degrees Fahrenheit in Celsius?"),
    # --- statistics ---
    ("statistics_calc", "numbers", "mean", "terse", "mean of {list}"),
    ("statistics_calc", "numbers", "median", "chatty", "What's the median of these numbers: {list}?"),
    ("statistics_calc", "numbers", "stdev", "terse", "standard deviation of {list_and}"),
    ("statistics_calc", "numbers", "mean", "chatty", "can you average {list_and} for me"),
    ("statistics_calc", "numbers", "mean", "other-language", "Mittelwert von {list_de}"),
    # --- distractors: the topics and typed values, but nothing a tool computes ---
    (None, "net", "", "chatty", "Why would anyone reserve the broadcast address of {net}?"),
    (None, "prefix", "", "terse", "is a /{p} too big for a home network"),
    (None, "base", "", "chatty", "Why do programmers like hex numbers such as {hex}?"),
    (None, "composite", "", "terse", "is {n} a lucky number"),
    (None, "compound", "", "chatty", "Should I invest ${p} at {r}% or pay off my debt first?"),
    (None, "tip", "", "chatty", "Is a {pct}% tip on ${bill} considered rude in Japan?"),
    (None, "two_dates", "", "chatty", "What happened between {a_dmy} and {b_dmy} in world history?"),
    (None, "one_date", "", "terse", "famous people born on {mdy}"),
    (None, "units", "", "chatty", "Is {v} {f_long} a long way to walk for a child?"),
    (None, "numbers", "", "terse", "are {list} lottery numbers worth playing"),
]
