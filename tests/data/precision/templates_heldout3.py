"""HELD-APART phrasing templates, third round (issue 30): written after tuning round 2 and BEFORE round 3 (a
general list of function words the typed readers may skip), never tuned against. From round 3 on this is
the clean held-apart part (generated-heldout2's misses were seen once). No template text here may appear
in the other template files."""

from __future__ import annotations

from tests.data.precision.templates_heldout import Template

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "chatty", "Please tell me the broadcast address for {net}."),
    ("subnet_calc", "net", "first", "terse", "{net}: first usable address?"),
    ("subnet_calc", "net", "wildcard", "chatty", "I need the wildcard mask of {net} for an ACL"),
    ("subnet_calc", "prefix", "mask", "chatty", "what subnet mask does a /{p} correspond to?"),
    ("subnet_calc", "contains", "contains", "chatty", "would {ip} be within {net}?"),
    ("subnet_calc", "net", "last", "other-language", "Was ist die letzte nutzbare Adresse in {net}?"),
    # --- bases ---
    ("number_base", "base", "to_bin", "terse", "{n} -> binary"),
    ("number_base", "base", "to_hex", "chatty", "I'd like {n} in hexadecimal please"),
    ("number_base", "base", "from_oct", "terse", "octal {oct} in decimal"),
    ("number_base", "base", "small_hex", "words", "what is {small_words} in hex"),
    ("number_base", "base", "to_oct", "other-language", "Wandle {n} in Oktal um"),
    # --- primes ---
    ("prime_factorize", "composite", "largest", "chatty", "Can you give me the prime factorization of {n}?"),
    ("prime_factorize", "composite", "largest", "terse", "highest prime factor of {n_comma}"),
    ("prime_factorize", "composite", "smallest", "other-language", "kleinster Primfaktor von {n}"),
    # --- money ---
    ("decimal_finance", "compound", "total", "chatty",
     "I'm investing ${p} at {r}% interest compounded {freq}. What will it be worth after {y} years?"),
    ("decimal_finance", "simple", "interest", "terse", "simple interest: ${p}, {r}%, {y} years"),
    ("decimal_finance", "loan", "payment", "chatty",
     "what's my monthly payment if I borrow ${p} at {r}% for {y} years?"),
    ("decimal_finance", "tip", "tip", "terse", "tip {pct}% on ${bill}"),
    ("decimal_finance", "tip", "tip", "other-language", "Wie viel sind {pct}% Trinkgeld auf {bill} Euro?"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "chatty", "Could you count the days between {a_dmy} and {b_dmy}?"),
    ("date_diff", "two_dates", "days", "terse", "days from {a_mdy} to {b_mdy}"),
    ("day_of_week", "one_date", "weekday", "terse", "{iso} weekday?"),
    ("day_of_week", "one_date", "weekday", "chatty", "Which day of the week is {mdy}?"),
    ("date_add", "one_date", "plus_n", "chatty", "If I start on {dmy}, what's the date {n} days later?"),
    ("date_add", "one_date", "minus_n", "terse", "{n} days prior to {iso}"),
    ("date_add", "one_date", "plus_n", "other-language", "Was ist das Datum {n} Tage nach dem {de}?"),
    ("date_diff", "two_dates", "days", "other-language", "Wie viele Tage sind es vom {a_de} bis {b_de}?"),
    # --- units ---
    ("unit_convert", "units", "result", "chatty", "What's {v} {f_long} in {t_long}?"),
    ("unit_convert", "units", "result", "terse", "{v} {f} -> {t}"),
    ("unit_convert", "units", "result", "chatty", "please convert {v} {f} into {t}"),
    ("unit_convert", "units", "small_result", "words", "what is {small_words} {f_long} in {t_long}"),
    ("unit_convert", "units", "result", "other-language", "Wie viel sind {v_de} {f_de} in {t_de}?"),
    ("unit_convert", "temperature", "f_to_c", "terse", "{f}F to C"),
    # --- statistics ---
    ("statistics_calc", "numbers", "mean", "chatty", "what's the average of the following: {list}"),
    ("statistics_calc", "numbers", "stdev", "terse", "sample standard deviation {list}"),
    ("statistics_calc", "numbers", "median", "terse", "median {list_space}"),
    ("statistics_calc", "numbers", "mean", "other-language", "Berechne den Mittelwert von {list_de}"),
    # --- distractors ---
    (None, "net", "", "chatty", "Can hackers see my traffic on {net}?"),
    (None, "mask", "", "terse", "is {mask} a weird mask to use at home"),
    (None, "composite", "", "chatty", "I dreamt of the number {n} last night, what does it mean?"),
    (None, "compound", "", "chatty", "My bank offers {r}% on ${p} - is that a good deal compared to stocks?"),
    (None, "one_date", "", "chatty", "Remind me what I did on {dmy}"),
    (None, "units", "", "chatty", "Is {v} {f_long} too far to commute every day?"),
    (None, "numbers", "", "chatty", "My kids' test scores were {list}, should I be worried?"),
    (None, "two_dates", "", "terse", "who was president between {a_iso} and {b_iso}"),
]
