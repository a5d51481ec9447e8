"""The researcher's findings in act 2 of ``rmem demo``: topics, each with its notes.

Kept apart from the act because it is data: extend :data:`FINDINGS` to give the researcher
more to say; the act reads :data:`TOPICS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A research topic: its tag, where its findings come from, and the findings.

    Each finding is ``(point, note)``: ``point`` is the writer's outline entry, the words it
    searches for; ``note`` is what the researcher records.
    """

    tag: str
    source: str
    findings: tuple[tuple[str, str], ...]


# The researcher's findings, as a table because it reads and extends better than tuples: a
# "[tag] source" line starts a topic, then one "point | note" line per finding (see Topic).
FINDINGS = """
[redis] redis.io/docs
streams consumer groups | Redis streams are append-only logs that consumer groups read in parallel.
pub/sub delivery | Redis pub/sub delivers a message at most once, to subscribers connected then.
Lua scripts atomic | A Lua script runs atomically in Redis: no other command runs in between.
key expiry TTL | Any Redis key can expire after a TTL set with EXPIRE.
main thread commands | Redis executes commands on one main thread, so each command is atomic.
persistence snapshots | Redis persists data with RDB snapshots, an append-only file, or both.
cluster hash slots | Redis Cluster spreads keys over 16384 hash slots.
hash tag braces | Keys sharing a hash tag in braces land in the same cluster hash slot.
sorted sets score | Sorted sets keep members ordered by score and read ranges in logarithmic time.
pipelining round trips | Pipelining sends many commands before reading replies, saving round trips.
replication replicas | Replicas copy a primary's data asynchronously.
maxmemory eviction policy | With maxmemory set, Redis evicts keys by a policy such as allkeys-lru.
query engine vector search | The Redis query engine indexes hashes for text and vector search.
HyperLogLog distinct count | A HyperLogLog counts distinct items in at most 12 KB of memory.
MULTI EXEC transaction | MULTI and EXEC queue commands and run them as one transaction.
[python] docs.python.org
interpreter lock threads | The CPython interpreter lock lets one thread at a time run bytecode.
dictionary insertion order | Dictionaries keep insertion order, guaranteed since Python 3.7.
generators yield | Generators produce values lazily with the yield keyword.
asyncio event loop coroutines | asyncio runs coroutines on an event loop in a single thread.
multiprocessing spawn | The multiprocessing spawn start method gives each child a fresh interpreter.
type hints mypy | Type hints are not enforced at run time; tools such as mypy check them.
dataclasses fields | Dataclasses generate __init__ and __repr__ from annotated fields.
with statement context manager | A context manager's __exit__ runs when its with statement ends.
f-strings formatting | f-strings format values inline and arrived in Python 3.6.
tuples immutable lists | Tuples are immutable sequences, while lists can change in place.
stable sort | Python's sort is stable: equal items keep their original order.
pip PyPI packages | pip installs packages from PyPI, the Python Package Index.
virtual environment | A virtual environment isolates the packages installed for one project.
integers arbitrary precision | Python integers have arbitrary precision, so they never overflow.
walrus operator assignment | The walrus operator := makes an assignment inside an expression.
[astronomy] nasa.gov
sunlight travel time | Sunlight takes about 8 minutes 20 seconds to travel to Earth.
largest planet Jupiter | Jupiter is the largest planet in the Solar System.
light-year distance | A light-year is the distance light travels in a year, about 9.46 trillion km.
Moon orbit days | The Moon takes about 27.3 days to orbit Earth.
Venus retrograde rotation | Venus has retrograde rotation: it spins the other way to most planets.
Mars moons Phobos Deimos | Mars has two small moons, Phobos and Deimos.
Saturn rings ice | Saturn's rings are made mostly of water ice.
closest star Proxima | Proxima Centauri, 4.2 light-years away, is the closest known star to the Sun.
Milky Way spiral galaxy | The Milky Way is a barred spiral galaxy.
neutron stars density | Neutron stars pack more mass than the Sun into a sphere about 20 km across.
Mercury atmosphere temperatures | Mercury has almost no atmosphere, so temperatures swing wildly.
total solar eclipse | A total solar eclipse happens when the Moon fully covers the Sun's disc.
comet tails | Comet tails point away from the Sun, pushed by the solar wind and sunlight.
Hubble telescope 1990 | The Hubble Space Telescope has orbited Earth since 1990.
Pluto dwarf planet | Pluto was reclassified as a dwarf planet in 2006.
[ocean] noaa.gov
ocean surface percent | The ocean covers about 71 percent of Earth's surface.
deepest Mariana Trench | The Mariana Trench is the ocean's deepest known point, nearly 11 km down.
tides gravity | Tides are driven mainly by the gravity of the Moon.
seawater salt | Seawater averages about 3.5 percent salt by weight.
Gulf Stream warm water | The Gulf Stream carries warm water from the Gulf of Mexico towards Europe.
coral reefs species | Coral reefs cover under 1 percent of the seafloor but shelter many species.
blue whale largest animal | The blue whale is the largest animal known to have lived.
phytoplankton oxygen | Phytoplankton produce about half of the oxygen on Earth.
sound speed water | Sound travels about four times faster in water than in air.
Pacific largest basin | The Pacific is the largest and deepest ocean basin.
dark depths sunlight | Below about 1000 m the ocean is dark: no sunlight reaches those depths.
tsunamis earthquakes | Tsunamis are usually set off by undersea earthquakes.
carbon dioxide absorbs | The ocean absorbs roughly a quarter of the carbon dioxide humans emit.
hydrothermal vents life | Life at hydrothermal vents feeds on chemicals instead of sunlight.
sea ice freezing | Sea ice forms when seawater freezes, at about minus 1.8 degrees Celsius.
"""


def _parse_findings(text: str) -> tuple[Topic, ...]:
    """The topics of a :data:`FINDINGS`-style table, in order."""
    heads: list[tuple[str, str]] = []
    rows: dict[str, list[tuple[str, str]]] = {}
    for line in text.strip().splitlines():
        if line.startswith("["):
            tag, source = line[1:].split("]", 1)
            heads.append((tag, source.strip()))
            rows[tag] = []
        else:
            point, note = line.split("|", 1)
            rows[heads[-1][0]].append((point.strip(), note.strip()))
    return tuple(Topic(tag, source, tuple(rows[tag])) for tag, source in heads)


TOPICS = _parse_findings(FINDINGS)
TOPIC_BY_TAG = {topic.tag: topic for topic in TOPICS}
NOTE_COUNT = sum(len(topic.findings) for topic in TOPICS)
