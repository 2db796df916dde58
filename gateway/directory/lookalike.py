"""Does a refused address look like an approved one? Scoring, and masking for display.

Misdirected email is the most common personal-data breach in this sector, and most of it
is a typo or an autocomplete slip. When a recipient is refused, the sender is told which
approved contact it resembles (masked), so they can correct it. The rules, in order:

- same approved domain, local part near-identical: a typo, a confusable character,
  reordered name parts (``whitaker.j``), or a ``+tag``;
- a domain that is an approved one under another suffix (gov.uk vs org.uk vs com), a
  sub-domain of it, within edit distance 1 (2 for long names) of its registrable part,
  a Unicode confusable of it (UTS #39-style skeleton), or that embeds its name;
- the approved person's name at a personal webmail domain.

Nothing here decides acceptance: it only suggests. Hints never print a full address
(:func:`mask`), and the filter rate-limits them per staff member.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# Multi-label public suffixes the centre is likely to meet (a curated slice of the Public
# Suffix List: UK public sector first). Anything else: the last label is the suffix.
MULTI_SUFFIXES = frozenset(
    "ac.uk co.uk gov.uk ltd.uk me.uk net.uk nhs.uk org.uk plc.uk police.uk sch.uk "  # noqa: SIM905 (word list)
    "com.au net.au org.au edu.au gov.au ac.nz co.nz govt.nz org.nz net.nz ac.za co.za "
    "gov.za org.za com.br co.in gov.in co.jp com.cn".split()
)
WEBMAIL = frozenset(
    "gmail.com googlemail.com hotmail.com hotmail.co.uk outlook.com live.com "  # noqa: SIM905 (word list)
    "live.co.uk msn.com yahoo.com yahoo.co.uk ymail.com aol.com aol.co.uk icloud.com "
    "me.com mac.com protonmail.com proton.me pm.me gmx.com gmx.co.uk mail.com "
    "btinternet.com sky.com virginmedia.com talktalk.net zoho.com tutanota.com "
    "hushmail.com".split()
)

# Characters that render like Latin letters (a slice of Unicode's confusables.txt, the
# UTS #39 data); applied after NFKD (which already folds full-width and styled letters).
_CONFUSABLE = str.maketrans(
    "аеорсухіјѕһԁԛԝӏɡոսօαορνικυχϲτıɑłøſ",
    "aeopcyxijshdqwlgnuoaopvikuxctialos",
)
_ASCII_CONFUSABLE = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("0", "o"), ("1", "l"), ("|", "l"))


@dataclass(frozen=True)
class Candidate:
    """An approved entry as the lookalike index sees it."""

    contact_id: int
    address: str  # the approved address, or the domain of a whole-domain entry
    local: str | None  # None for whole-domain entries
    domain: str  # ASCII, lower case
    display_name: str = ""


@dataclass(frozen=True)
class Resemblance:
    contact_id: int
    masked: str  # the approved address, masked for display
    reason: str  # local-typo, confusable, reordered, plus-tag, subdomain, other-suffix,
    # domain-typo, embedded, webmail-name


def registrable(domain: str) -> tuple[str, str]:
    """(name, suffix): ``mail.cafcass.gov.uk`` -> (``cafcass``, ``gov.uk``)."""
    labels = domain.lower().rstrip(".").split(".")
    n = 2 if len(labels) >= 3 and ".".join(labels[-2:]) in MULTI_SUFFIXES else 1
    if len(labels) <= n:
        return labels[0], ".".join(labels[1:])
    return labels[-n - 1], ".".join(labels[-n:])


def distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap counts 1), or ``limit + 1`` if larger.

    Only the band of cells within ``limit`` of the diagonal is computed (Ukkonen): cells
    outside it are over the limit anyway.
    """
    big = limit + 1
    if abs(len(a) - len(b)) > limit:
        return big
    prev2: list[int] = []
    prev = [j if j <= limit else big for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        cur = [big] * (len(b) + 1)
        if i <= limit:
            cur[0] = i
        lo, hi = max(1, i - limit), min(len(b), i + limit)
        for j in range(lo, hi + 1):
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = min(v, big)
        if min(cur[lo - 1 : hi + 1]) > limit:
            return big
        prev2, prev = prev, cur
    return prev[-1]


def _deletions(word: str, depth: int) -> set[str]:
    """``word`` with up to ``depth`` characters deleted: two strings within ``depth``
    edits (a swap counts one) always share one of these (the SymSpell idea)."""
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def _typo_limit(name: str) -> int:
    return 2 if len(name) >= 10 else 1


def skeleton(text: str) -> str:
    """A UTS #39-style skeleton: strings that look alike map to the same skeleton.

    Looser than the standard on purpose (marks are dropped and case folded): it only
    selects a hint; any non-ASCII address is refused anyway.
    """
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if unicodedata.category(c) != "Mn").casefold()
    folded = folded.translate(_CONFUSABLE)
    for seen, means in _ASCII_CONFUSABLE:
        folded = folded.replace(seen, means)
    return folded


def mask(address: str) -> str:
    """``j.whitaker@cafcass.gov.uk`` -> ``j.wh******@caf****.gov.uk`` (for hints and logs)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return _mask_part(address)
    _, suffix = registrable(domain)
    head = domain[: len(domain) - len(suffix) - 1] if suffix else domain
    return f"{_mask_part(local)}@{_mask_part(head)}{'.' + suffix if suffix else ''}"


def _mask_part(text: str) -> str:
    keep = min(4, max(1, len(text) // 3 + 1))
    return text[:keep] + "*" * (len(text) - keep)


def _tokens(local: str) -> list[str]:
    return [t for t in re.split(r"[._\-]", local.lower()) if t]


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if "a" <= c <= "z")


def _name_keys(c: Candidate) -> set[str]:
    keys = {_letters(c.local or "")}
    words = [_letters(w) for w in c.display_name.split()]
    words = [w for w in words if w]
    if len(words) >= 2:
        first, last = words[0], words[-1]
        keys |= {first + last, last + first, first[0] + last, last + first[0]}
    return {k for k in keys if len(k) >= 5}


class LookalikeIndex:
    """Built once per contact-list snapshot; :meth:`find` is called only on refusal."""

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.by_domain: dict[str, list[Candidate]] = defaultdict(list)
        self.by_registrable: dict[str, list[str]] = defaultdict(list)
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.near: dict[str, set[str]] = defaultdict(set)  # deletion variant -> names
        self.locals: dict[str, list[tuple[Candidate, str, str, list[str]]]] = defaultdict(list)
        self.skeletons: dict[str, str] = {}
        self.people: dict[str, Candidate] = {}
        for c in sorted(candidates, key=lambda c: c.contact_id):
            first_at_domain = c.domain not in self.by_domain
            self.by_domain[c.domain].append(c)
            if c.local is not None:
                want = c.local.lower()
                self.locals[c.domain].append((c, want, skeleton(want), sorted(_tokens(want))))
                for key in _name_keys(c):
                    self.people.setdefault(key, c)
            if not first_at_domain:
                continue
            name, suffix = registrable(c.domain)
            reg = f"{name}.{suffix}"
            if reg not in self.by_registrable:
                self.by_name[name].append(reg)
                for variant in _deletions(name, _typo_limit(name)):
                    self.near[variant].add(name)
            self.by_registrable[reg].append(c.domain)
            self.skeletons.setdefault(skeleton(c.domain), c.domain)

    def find(self, local: str, domain: str, unicode_domain: str = "") -> Resemblance | None:
        """The approved entry ``local@domain`` most plausibly meant, with the reason."""
        domain = domain.lower()
        if domain in self.by_domain:
            hit = self._same_domain(local, domain)
            if hit is not None or domain not in WEBMAIL:
                return hit
        if domain in WEBMAIL:
            person = self.people.get(_letters(local.split("+", 1)[0]))
            return self._say(person, "webmail-name") if person else None
        approved = self._domain_lookalike(domain, unicode_domain or domain)
        if approved is None:
            return None
        meant, reason = approved
        return self._say(self._closest(local, meant), reason)

    def _same_domain(self, local: str, domain: str) -> Resemblance | None:
        given = local.lower()
        # The mailbox a "+tag" reaches is what resembles, or not (REL-5): a typo stays a
        # typo under a tag ("j.whitacker+court").
        base = given.split("+", 1)[0] or given
        shape, tokens = skeleton(base), sorted(_tokens(base))
        for c, want, want_shape, want_tokens in self.locals[domain]:
            if base == want:
                return self._say(c, "plus-tag")
            if shape == want_shape:
                return self._say(c, "confusable")
            if base != want and tokens == want_tokens:
                return self._say(c, "reordered")
            limit = 2 if len(want) >= 8 else 1
            if distance(base, want, limit) <= limit:
                return self._say(c, "local-typo")
        return None

    def _domain_lookalike(self, domain: str, unicode_domain: str) -> tuple[str, str] | None:
        meant = self.skeletons.get(skeleton(unicode_domain))
        if meant is not None:
            return meant, "confusable"
        name, suffix = registrable(domain)
        reg = f"{name}.{suffix}"
        if reg in self.by_registrable:
            return self.by_registrable[reg][0], "subdomain"
        if name in self.by_name:
            return self.by_registrable[self.by_name[name][0]][0], "other-suffix"
        typo = self._name_typo(name)
        if typo is not None:
            regs = self.by_name[typo]
            reg = next((r for r in regs if r.endswith("." + suffix)), regs[0])
            return self.by_registrable[reg][0], "domain-typo"
        # An approved name embedded in a longer domain (cafcass-gov.uk, cafcass.gov.uk.evil).
        for i in range(len(domain)):
            for j in range(i + 4, len(domain) + 1):
                inside = self.by_name.get(domain[i:j])
                if inside:
                    return self.by_registrable[inside[0]][0], "embedded"
        return None

    def _name_typo(self, name: str) -> str | None:
        """The approved name within 1 edit (2 for names of 10+ letters) of ``name``."""
        seen: set[str] = set()
        for variant in _deletions(name, 2 if len(name) >= 8 else 1):
            seen |= self.near.get(variant, set())
        close = [(distance(name, n, _typo_limit(n)), n) for n in seen]
        close = [(d, n) for d, n in close if d <= _typo_limit(n)]
        return min(close)[1] if close else None

    def _closest(self, local: str, domain: str) -> Candidate:
        entries = self.by_domain[domain]
        whole = [c for c in entries if c.local is None]
        if whole:
            return whole[0]
        return min(
            entries,
            key=lambda c: (distance(local.lower(), (c.local or "").lower(), 64), c.contact_id),
        )

    @staticmethod
    def _say(c: Candidate, reason: str) -> Resemblance:
        return Resemblance(c.contact_id, mask(c.address), reason)
