"""Words that never name an entity on their own and are never reported as ontology gaps."""

from __future__ import annotations

STOPWORDS = frozenset("""
a about above after again against all almost also although always am among an and another any anybody anyone
anything anyway are around as ask asked asking at away back be became because become been before being below
best better between both but by can cannot could did do does doing done down during each either else enough
even ever every everyone everything example explain explained explaining fact far few find first for from full
further get gets getting give given gives go goes going gone good got great had has have having he her here
hers herself him himself his how however i if in instance into is it its itself just keep kind know known
large last later least less let like likely little long look made main make makes making many may maybe me
mean means might more most much must my myself need needs never new next no nobody none nor not nothing now
of off often ok okay old on once one only or other others otherwise our ours ourselves out over own part
people per perhaps please point possible pretty probably put quite rather really right said same say says
see seem seems several shall she should show since so some somebody someone something sometimes soon still
such sure take tell than thank thanks that the their theirs them themselves then there these they thing things
think this those though through thus to today together too took toward try trying two under until up upon us
use used uses using usually very via want wants was way ways we well went were what whatever when where
whether which while who whom whose why will with within without work works would yes yet you your yours
yourself yourselves difference differences different compare compared comparison versus vs between describe
describes definition define overview summary summarize detail details detailed question questions answer
answers help helps tell step steps how-to safe safely okay allowed allow normal normally usual common
problem problems issue issues reason reasons cause why happen happens happened right wrong true false
much more less better worse best worst good bad high low big small large short long first second third
today tomorrow yesterday year years month months week weeks day days hour hours minute minutes time times
does doing done make made get got give take takes taking taken need needed want wanted like liked file
files filed filing do
can't don't doesn't isn't aren't won't wouldn't shouldn't couldn't i'm i've it's what's that's there's
let's you're we're they're he's she's
""".split())


def is_stopword(word: str) -> bool:
    return word in STOPWORDS
