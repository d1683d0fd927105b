"""HELD-APART phrasing templates, sixth round (issue 30, third round): written and committed BEFORE the third
round's changes to the preflight (which studied the misses of heldout3, heldout4 and heldout5), and never tuned
against, so its first run after that round measures how those changes generalise. Eight templates written with
these turned out to be in earlier parts already (common phrasings such as "{iso} + {n} days"); they were
dropped, not replaced, so that every template here predates the round. No template text here may appear in the
other template files."""

from __future__ import annotations

from tests.data.precision.templates_heldout import Template

TEMPLATES: list[Template] = [
    # --- subnets ---
    ("subnet_calc", "net", "broadcast", "terse", "{net} broadcast addr?"),
    ("subnet_calc", "net", "usable", "chatty", "So for {net}, how many hosts can I actually use?"),
    ("subnet_calc", "net", "wildcard", "terse", "wildcard of {net} pls"),
    ("subnet_calc", "prefix", "mask", "chatty", "I keep forgetting - what's the subnet mask for a /{p}?"),
    ("subnet_calc", "mask", "prefix", "chatty", "Turn the mask {mask} into a CIDR prefix for me"),
    ("subnet_calc", "contains", "contains", "terse", "is {ip} within {net}"),
    ("subnet_calc", "net", "network", "chatty", "What network does {hostnet} belong to? I need its network address"),
    ("subnet_calc", "net", "broadcast", "other-language", "Was ist die Broadcast-Adresse von {net}?"),
    # --- bases ---
    ("number_base", "base", "to_hex", "chatty", "I need {n} converted to hexadecimal, thanks!"),
    ("number_base", "base", "from_bin", "terse", "binary {bin} in decimal"),
    ("number_base", "base", "to_bin", "chatty", "What does {n} look like in base 2?"),
    ("number_base", "base", "from_hex", "chatty", "Hex value {hex} - what is that in decimal?"),
    ("number_base", "base", "small_oct", "words", "Write {small_words} in octal"),
    ("number_base", "base", "to_hex", "other-language", "Wandle {n} in Hexadezimal um"),
    # --- primes ---
    ("prime_factorize", "composite", "largest", "chatty", "Find me the biggest prime factor of {n}, please."),
    ("prime_factorize", "composite", "smallest", "terse", "smallest prime dividing {n}"),
    ("prime_factorize", "composite", "largest", "chatty", "Among the prime factors of {n_comma}, which is largest?"),
    ("prime_factorize", "composite", "smallest", "other-language", "Kleinster Primteiler von {n}"),
    # --- money ---
    ("decimal_finance", "compound", "total", "chatty",
     "If I put ${p} away at {r}% compounded {freq} for {y} years, how much will I have?"),
    ("decimal_finance", "loan", "payment", "chatty",
     "I'm borrowing ${p} over {y} years at {r}%. What would my monthly payment be?"),
    ("decimal_finance", "tip", "tip", "terse", "{pct}% tip on a ${bill} check"),
    ("decimal_finance", "tip", "tip", "chatty", "Dinner came to ${bill}; what's a {pct} percent tip?"),
    ("decimal_finance", "loan", "payment", "other-language",
     "Monatliche Rate für einen Kredit über {p_plain} Euro, {r}% Zinsen, {y} Jahre Laufzeit?"),
    # --- dates ---
    ("date_diff", "two_dates", "days", "chatty", "How many days lie between {a_mdy} and {b_mdy}?"),
    ("date_diff", "two_dates", "days", "terse", "{a_iso} to {b_iso}: days?"),
    ("day_of_week", "one_date", "weekday", "chatty", "Do you know what day of the week {dmy} was?"),
    ("day_of_week", "one_date", "weekday", "terse", "weekday for {iso}"),
    ("date_add", "one_date", "minus_n", "chatty", "What was the date {n} days before {mdy}?"),
    ("date_add", "one_date", "plus_small", "words", "{small_words} days after {dmy}, which date is that?"),
    # --- units ---
    ("unit_convert", "units", "result", "chatty", "Could you convert {v} {f_long} to {t_long} for me?"),
    ("unit_convert", "temperature", "c_to_f", "chatty",
     "It's {c} degrees Celsius outside - what's that in Fahrenheit?"),
    # --- statistics ---
    ("statistics_calc", "numbers", "mean", "terse", "mean of {list}?"),
    ("statistics_calc", "numbers", "median", "chatty", "I measured {list_and}. What's the median value?"),
    ("statistics_calc", "numbers", "pstdev", "terse", "population standard deviation {list}"),
    # --- distractors ---
    (None, "net", "", "chatty", "My ISP gave me {net} - is that enough for a small office?"),
    (None, "base", "", "chatty", "Is {n} considered a big number in computing?"),
    (None, "compound", "", "chatty", "Would you trust a bank offering {r}% on ${p}?"),
    (None, "one_date", "", "chatty", "What was the weather like in Berlin on {dmy}?"),
    (None, "units", "", "terse", "is {v} {f_long} a lot for a cyclist"),
    (None, "numbers", "", "chatty", "Do {list} look like lottery numbers to you?"),
]
