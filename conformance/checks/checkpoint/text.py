"""Real text for the checkpoint checks: five paragraphs, and strategies that select, cut and pair their
sentences."""

import re

from hypothesis import strategies as st

PARAGRAPHS = (
    "The lighthouse on Skerry Point was automated in 1987, but Margaret Ellison still climbs its 114 steps every "
    "Sunday morning. She checks the lens for salt, wipes the brass rails, and writes the weather into a logbook that "
    "nobody has asked her to keep. The keepers before her recorded gales, shipwrecks and the occasional whale; her "
    "entries are shorter and stranger: \u201cfog, then sun, then fog again,\u201d or \u201ca heron stood on the "
    "jetty for an hour and did not move.\u201d When the coastguard offered to take the logbooks away for an archive, "
    "she refused. The sea, she said, does not care whether anyone is watching, but she does. Visitors sometimes ask "
    "whether she is lonely. She points at the radio, the kettle and the cat, a tortoiseshell called Admiral, and "
    "says that solitude is only a problem for people who have never tried it properly.",

    "Sourdough bread rises because of a community of wild yeasts and lactic-acid bacteria living in a paste of "
    "flour and water. The bacteria produce lactic and acetic acids, which give the bread its sour taste and lower "
    "the pH to around 3.8\u20134.5, a range in which few competing microbes survive. The yeasts release carbon "
    "dioxide, and the gluten network, stretched during kneading, traps the gas in thousands of small pockets. "
    "Temperature changes everything: at 24 \u00b0C a starter doubles in about six hours, while in a cold kitchen it "
    "may take twice as long. Bakers who want a milder loaf keep the dough warm and wet; those who want a sharper one "
    "ferment it slowly in the refrigerator overnight. None of this requires special equipment, although a digital "
    "scale accurate to one gram helps, since a 2% change in salt is easy to taste.",

    "Early maps were arguments as much as descriptions. A sixteenth-century chart of the Atlantic might show "
    "coastlines with surprising accuracy while still placing imaginary islands, such as Brasil or Antillia, wherever "
    "the cartographer's sources disagreed. Longitude was the hardest problem: latitude could be measured from the "
    "height of the sun at noon, but finding one's east\u2013west position required an accurate clock, and pendulum "
    "clocks were useless on a rolling ship. The solution, the marine chronometer, took decades to perfect and was "
    "expensive enough that many captains sailed without one well into the nineteenth century. Modern satellite "
    "navigation has made such difficulties seem quaint; a phone knows its position to within a few metres. Yet the "
    "old habit survives in a different form, because every map still chooses what to leave out, and those choices "
    "are rarely neutral.",

    "At 02:14 UTC the payment service began returning HTTP 503 errors for roughly 40% of requests. The on-call "
    "engineer was paged within two minutes, confirmed that the database was healthy, and noticed that the "
    "connection pool on three of the twelve application servers had been exhausted. A configuration change deployed "
    "the previous afternoon had lowered the pool's idle timeout from 300 seconds to 30, which caused connections to "
    "be closed and reopened far more often under load. Rolling back the change restored normal service by 02:51. "
    "The review found no single mistake: the change had been tested, but only against a staging environment with a "
    "tenth of the traffic. The team agreed on three follow-up actions, namely a load test for configuration "
    "changes, an alert on pool saturation, and a clearer runbook, and scheduled them for the following sprint.",

    "Each autumn, millions of songbirds cross the Gulf of Mexico in a single night, flying for eighteen hours or "
    "more without stopping. Before departure they feed intensely, sometimes increasing their body mass by half, and "
    "much of that extra weight is fat that will be burned during the crossing. How they find their way is still "
    "partly a mystery. Experiments suggest that young birds inherit a preferred direction and distance, while older "
    "ones also use the stars, the setting sun, polarized light and the Earth's magnetic field, which some species "
    "appear to sense through proteins in the eye. Weather radar, designed to track rain, now records these "
    "migrations in detail: on a clear night in late September, the screens over Louisiana fill with a pale green "
    "bloom that is not rain at all. Researchers in S\u00e3o Paulo, Z\u00fcrich and Tokyo (\u6771\u4eac) compare "
    "such maps to learn how light pollution and wind farms change the routes \U0001f642.",
)
"""Five English paragraphs (170-188 tokens each, ~900 together, so concatenations exceed the 512 positions), with
digits, times, units, curly quotes, dashes, accents, CJK characters and an emoji (which the vocabulary lacks:
[UNK])."""

SENTENCES = tuple(tuple(re.split(r"(?<=[.;:])\s+(?=[A-Z\u201c])", p)) for p in PARAGRAPHS)


@st.composite
def passages(draw, max_sentences=4):
    """1..max_sentences consecutive sentences of one paragraph, sometimes cut after a word."""
    sentences = SENTENCES[draw(st.integers(0, len(SENTENCES) - 1))]
    start = draw(st.integers(0, len(sentences) - 1))
    count = draw(st.integers(1, min(max_sentences, len(sentences) - start)))
    text = " ".join(sentences[start:start + count])
    if draw(st.integers(0, 3)) == 0:
        words = text.split()
        text = " ".join(words[:draw(st.integers(1, len(words)))])
    return text


@st.composite
def rows(draw, pairs=True, max_pieces=3):
    """One input row: a concatenation of 1..max_pieces passages, or (1 in 4, with `pairs`) a sentence pair
    [first, second] (token types 0 and 1)."""
    first = " ".join(draw(st.lists(passages(), min_size=1, max_size=max_pieces)))
    if pairs and draw(st.integers(0, 3)) == 0:
        return [first, draw(passages())]
    return first


@st.composite
def long_rows(draw):
    """Every paragraph in a drawn order (beyond 512 tokens, so truncation decides the length), or half the time one
    or two paragraphs (shorter than 384 tokens: padding to the drawn length fills the rest)."""
    order = draw(st.permutations(range(len(PARAGRAPHS))))
    if draw(st.booleans()):
        return " ".join(PARAGRAPHS[i] for i in order[:draw(st.integers(1, 2))])
    return " ".join(PARAGRAPHS[i] for i in order)
